//! The dashboard (`/ui/`) in a real browser: `fgbackup daemon --ui`
//! archiving to s3s-fs, and tests/support/ui_check.py driving Debian's
//! chromium with Playwright (both installed by scripts/test.sh).

use crate::common;

use std::time::Duration;

use common::api::{Api, TOKEN};
use common::rawhttp::wait_for;
use common::*;

/// FortiGate lines of `device` on UTC day `day` (its midnight in seconds).
fn day_log(ws: &Workspace, device: &str, day: i64, lines: usize) {
    use std::io::Write;
    let date = day_name(day);
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    for i in 0..lines {
        let t = day + 36_000 + i as i64;
        writeln!(
            e,
            "date={date} time=10:00:00 devname=\"{device}\" devid=\"FGT60FTK2100{}\" eventtime={t} \
             logid=\"0000000013\" type=\"traffic\" subtype=\"forward\" vd=\"root\" action=\"accept\" \
             srcip=10.0.0.{} dstip=192.0.2.1",
            device.len(),
            i % 250
        )
        .unwrap();
    }
    let rel = format!("{device}/{device}-{date}T10.log.gz");
    let path = ws.write_raw(&rel, &e.finish().unwrap());
    set_old_mtime(&path);
}

fn day_name(secs: i64) -> String {
    let out = std::process::Command::new("date")
        .args(["-u", "-d", &format!("@{secs}"), "+%Y-%m-%d"])
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Sign-in (wrong token, then right, by keyboard) before any verify ran,
/// today per device and the bytes chart equal to `/overview` and
/// `/stats`, a gap day marked missing and a day of 10% of the median lines
/// marked thin, a verify run while the page is open shown with its
/// figures, a file archived while the page is open in the live feed within
/// 500 ms, a failed file shown as a failure, search, 1280 and 360 px
/// screenshots without horizontal scrolling, and no console error.
// docs/SAFETY.md S35
#[test]
fn the_dashboard_in_a_real_browser() {
    let s3 = S3Server::start();
    let ws = Workspace::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let midnight = |days_ago: i64| (now / 86_400 - days_ago) * 86_400;
    let device = "FGT-UI01";
    let (gap, thin) = (6, 4);
    let mut ok = Vec::new();
    for n in 1..=9 {
        match n {
            n if n == gap => {}
            n if n == thin => day_log(&ws, device, midnight(n), 40),
            n => {
                day_log(&ws, device, midnight(n), 400);
                ok.push(day_name(midnight(n)));
            }
        }
    }
    day_log(&ws, "FGT-UI02", midnight(2), 100);
    day_log(&ws, "FGT-UI02", midnight(1), 100);
    let args = ws.s3_upload_args(
        &s3.endpoint(),
        &["--index", "always", "--gzip-check", "always"],
    );
    let api = Api::daemon(&ws, &args, "1s", &[("APP_TOKENS", TOKEN), ("UI", "1")]);
    wait_for(Duration::from_secs(60), "the first files archived", || {
        let (status, body, _) = api.get("/backups?status=uploaded&limit=100", Some(TOKEN));
        let rows: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        (status == 200 && rows.as_array().map_or(0, Vec::len) == 10).then_some(())
    });
    // The page opens before any verify (a new install: nothing may answer
    // 404 into the console); the script runs this one while it watches.
    let mut verify = vec![env!("CARGO_BIN_EXE_fgbackup").to_string()];
    verify.extend(ws.bucket_args("verify", &s3.endpoint(), &[]));

    let shots = tempfile::tempdir().unwrap();
    let expect = serde_json::json!({
        "device": device,
        "gap": day_name(midnight(gap)),
        "thin": day_name(midnight(thin)),
        "ok": ok,
        "verify": {"argv": verify, "env": {"AWS_ACCESS_KEY_ID": ACCESS_KEY,
                   "AWS_SECRET_ACCESS_KEY": SECRET_KEY, "HOME": ws.home(), "PATH": "/usr/bin:/bin"}},
    });
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/ui_check.py");
    let out = std::process::Command::new("python3")
        .arg(script)
        .args([&api.base, TOKEN])
        .arg(ws.logs())
        .arg(shots.path())
        .arg(expect.to_string())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the browser check failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("{}", String::from_utf8_lossy(&out.stdout));
    for shot in ["dashboard-1280.png", "dashboard-360.png"] {
        let png = std::fs::read(shots.path().join(shot)).unwrap();
        assert!(png.starts_with(b"\x89PNG"), "{shot} is a PNG");
        if std::env::var("FGBACKUP_BLESS_DOCS").is_ok_and(|v| v == "1") {
            let docs = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/");
            std::fs::write(format!("{docs}{shot}"), png).unwrap();
        }
    }
}
