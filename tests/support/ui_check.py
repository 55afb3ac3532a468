"""The dashboard in a real browser: Playwright for Python driving Debian's
chromium (launched by path, nothing downloaded), against a running
`fgbackup daemon --ui` (tests/ui.rs starts it and prepares the data).

    python3 ui_check.py BASE_URL TOKEN LOGS_DIR SHOT_DIR EXPECT_JSON

EXPECT_JSON names the device, its gap day and its thin day, and the verify
command (argv, env) to run once the page shows that none has run yet. Each check
raises on failure; the last line printed is a JSON summary (latencies).
Any console error or warning, page error or CSP violation fails the run.
"""

import gzip
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request

from playwright.sync_api import sync_playwright

BASE, TOKEN, LOGS, SHOTS, EXPECT = sys.argv[1:6]
EXPECT = json.loads(EXPECT)
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def api(path):
    req = urllib.request.Request(BASE + path, headers={"Authorization": "Bearer " + TOKEN})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def write_log(rel, lines, broken=False):
    """A .gz the daemon's next run archives (or fails on, when broken)."""
    path = os.path.join(LOGS, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".part"
    if broken:
        data = b"this is not gzip"
    else:
        text = "".join(
            f'date=2026-12-01 time=10:00:{i % 60:02d} devname="{EXPECT["device"]}" '
            f'devid="FGT60FTK2100001" eventtime={1764583200 + i} logid="0000000013" '
            f'type="traffic" subtype="forward" vd="root" action="accept" srcip=10.1.0.{i % 200}\n'
            for i in range(lines)
        )
        data = gzip.compress(text.encode())
    with open(tmp, "wb") as f:
        f.write(data)
    # An hour old: past any --min-age.
    old = time.time() - 3600
    os.utime(tmp, (old, old))
    os.rename(tmp, path)


def first_seen(key, stop):
    """When the inventory first shows `key` (polled every 10 ms over the API)."""
    result = {}

    def poll():
        while not stop.is_set():
            try:
                rows = api("/backups?limit=5")
                if any((r.get("object_key") or r.get("filename")) == key for r in rows):
                    result["at"] = time.time()
                    return
            except Exception:
                pass
            time.sleep(0.01)

    t = threading.Thread(target=poll, daemon=True)
    t.start()
    return result, t


def sign_in(page, token):
    page.fill("input[type=password]", token)
    page.keyboard.press("Enter")


def main():
    problems = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.on("console", lambda m: m.type in ("error", "warning") and problems.append(f"console {m.type}: {m.text}"))
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.goto(BASE + "/ui/")

        # Sign in with the keyboard: a wrong token is refused, the right one opens the views.
        page.keyboard.press("Tab")
        sign_in(page, "not-the-token")
        page.wait_for_selector("#signin-error:not(:empty)", state="visible", timeout=5000)
        problems[:] = [m for m in problems if "401" not in m]  # the refused fetch itself
        sign_in(page, TOKEN)
        page.wait_for_selector("#today [data-device]", timeout=10000)

        # Today per device equals /overview, which adds up to /stats' day.
        overview = api("/overview")
        today = [s for s in api(f"/stats?date_from={overview['today']}&date_to={overview['today']}")]
        for d in overview["devices"]:
            row = page.locator(f'#today [data-device="{d["device"]}"]')
            check(row.locator(".files").inner_text().strip() == str(d["files"]), f"files of {d['device']}")
            check(row.locator(".failed").inner_text().strip() == str(d["failed"]), f"failed of {d['device']}")
            check(row.locator(".bytes").get_attribute("data-bytes") == str(d["bytes"]), f"bytes of {d['device']}")
        check(sum(d["files"] for d in overview["devices"]) == today[0]["files"], "devices add up to /stats files")
        check(sum(d["failed"] for d in overview["devices"]) == today[0]["failed"], "devices add up to /stats failed")

        # The chart and its total equal /stats over the same 30 days.
        page.wait_for_selector("#bytes-chart rect.bar", timeout=10000)
        bars = page.eval_on_selector_all(
            "#bytes-chart rect.bar", "els => els.map(e => [e.dataset.date, Number(e.dataset.bytes)])")
        total = page.locator("#stats-total")
        first = bars[0][0] if bars else overview["today"]
        stats = api(f"/stats?date_from={first}&date_to={overview['today']}")
        check(bars == [[s["date"], s["bytes_uploaded"]] for s in stats], f"bars {bars} vs /stats {stats}")
        check(int(total.get_attribute("data-files")) == sum(s["files"] for s in stats), "total files = /stats")
        check(int(total.get_attribute("data-bytes")) == sum(s["bytes_uploaded"] for s in stats), "total bytes = /stats")

        # The coverage calendar: the gap day missing, the 10% day thin, the others ok.
        cal = page.locator(f'#coverage [data-device="{EXPECT["device"]}"]')
        day_class = lambda d: cal.locator(f'[data-day="{d}"]').get_attribute("class")
        check("missing" in day_class(EXPECT["gap"]), f"gap day: {day_class(EXPECT['gap'])}")
        check("thin" in day_class(EXPECT["thin"]), f"thin day: {day_class(EXPECT['thin'])}")
        for d in EXPECT["ok"]:
            check("ok" in day_class(d).split(), f"{d}: {day_class(d)}")

        # No verify yet: said so (and nothing answered 404 into the console).
        page.wait_for_selector("#verify >> text=No verify has run yet", timeout=5000)
        run = subprocess.run(EXPECT["verify"]["argv"], env=EXPECT["verify"]["env"],
                             capture_output=True, timeout=60)
        check(run.returncode == 0, f"verify failed: {run.stderr.decode()}")
        # verify_finished on the stream makes the page read it again.
        page.wait_for_selector('#verify [data-field="checked"]', timeout=10000)
        verify = api("/verifications/last")
        for field in ("checked", "ok", "missing", "altered"):
            shown = page.locator(f'#verify [data-field="{field}"]').inner_text().strip()
            check(shown == str(verify[field]), f"verify {field}: {shown} vs {verify[field]}")

        # A file archived while the page is open reaches the live feed; so does a failure.
        page.wait_for_function("document.querySelector('#live-state').textContent.includes('live')", timeout=10000)
        key = f"{EXPECT['device']}/{EXPECT['device']}-live.log.gz"
        stop = threading.Event()
        seen, poller = first_seen(key, stop)
        write_log(key, 300)
        item = page.wait_for_selector(f'#feed li.file_archived[data-key="{key}"]', timeout=30000)
        received = int(item.get_attribute("data-received")) / 1000.0
        poller.join(timeout=10)
        stop.set()
        check("at" in seen, "the inventory never showed the file")
        latency = received - seen["at"]
        check(latency < 0.5, f"feed latency {latency:.3f} s (from the row's commit seen over the API)")
        bad = f"{EXPECT['device']}/broken.log.gz"
        write_log(bad, 0, broken=True)
        failed = page.wait_for_selector(f'#feed li.file_failed[data-key="{bad}"]', timeout=30000)
        check("failure" in failed.get_attribute("class"), "a failure is shown as one")

        # The search box calls /search.
        page.fill("#search input[name=device]", EXPECT["device"])
        page.locator("#search input[name=device]").press("Enter")
        page.wait_for_selector("#search table tbody tr", timeout=10000)

        page.screenshot(path=os.path.join(SHOTS, "dashboard-1280.png"), full_page=True)
        page.set_viewport_size({"width": 360, "height": 800})
        page.wait_for_timeout(300)
        width = page.evaluate("document.documentElement.scrollWidth")
        check(width <= 360, f"horizontal scroll at 360 px: {width}")
        page.screenshot(path=os.path.join(SHOTS, "dashboard-360.png"), full_page=True)
        browser.close()
    check(not problems, "console: " + "; ".join(problems))
    print(json.dumps({"feed_latency_ms": round(latency * 1000, 1), "bars": len(bars)}))


if __name__ == "__main__":
    main()
