/* fgbackup dashboard.
 *
 * Signs in with the API token, draws the views from the JSON API and follows
 * the live event stream. No library, no build step. Everything that comes
 * from the server (object keys, failure reasons, device names) enters the
 * page through textContent or attributes, never as HTML: it is outside data.
 */
"use strict";

const TOKEN_KEY = "fgbackup.token";
const FEED_MAX = 200;
const DAY_MS = 86400000;
const SEARCH_LIMIT = 50;
// Events after which the server's state has moved: the views are reloaded.
const REFRESH_ON = new Set(["run_finished", "verify_finished", "index_updated", "reset"]);

/* ---------- small helpers ---------- */

const $ = (id) => document.getElementById(id);

/** A new element. props: class, text, or any attribute (null/undefined skipped). */
function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(props)) {
    if (value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = String(value);
    else node.setAttribute(name, String(value));
  }
  node.append(...children); // strings become text nodes, never markup
  return node;
}

/** A new SVG element with attributes and optional text. */
function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Bytes in binary units: "812 B", "1.2 KiB", "3.4 GiB". */
function humanBytes(n) {
  const units = ["KiB", "MiB", "GiB", "TiB", "PiB"];
  if (!(n >= 1024)) return `${n ?? 0} B`;
  let value = n;
  let i = -1;
  do {
    value /= 1024;
    i += 1;
  } while (value >= 1024 && i < units.length - 1);
  return `${value.toFixed(1)} ${units[i]}`;
}

const pad2 = (n) => String(n).padStart(2, "0");

/** Local wall-clock time, HH:MM:SS (24 h, whatever the locale). */
function clock(d = new Date()) {
  return `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
}

/** A YYYY-MM-DD day moved by n days (UTC, as the API counts days). */
function addDays(day, n) {
  return new Date(Date.parse(day) + n * DAY_MS).toISOString().slice(0, 10);
}

const daysBetween = (from, to) => Math.round((Date.parse(to) - Date.parse(from)) / DAY_MS);
const todayUtc = () => new Date().toISOString().slice(0, 10);
const sum = (rows, field) => rows.reduce((total, row) => total + (Number(row[field]) || 0), 0);

/** Shows a message in an element (or hides it when there is none). */
function say(node, message) {
  node.textContent = message || "";
  node.hidden = !message;
}

/* ---------- session and API ---------- */

const token = () => sessionStorage.getItem(TOKEN_KEY);

/**
 * GET a JSON endpoint with the token. Resolves to {ok, status, body}, with
 * body null when the answer is not JSON, or to null after a 401 (the page
 * has then gone back to the sign-in form). Network failures reject.
 */
async function api(path) {
  const res = await fetch(path, {
    headers: { Authorization: `Bearer ${token()}` },
    cache: "no-store",
  });
  if (res.status === 401) {
    refused();
    return null;
  }
  let body = null;
  try {
    body = await res.json();
  } catch {
    // Not JSON (a proxy's error page, say): the caller words the status.
  }
  return { ok: res.ok, status: res.status, body };
}

/** The server's own words for a failed answer, else its status. */
function failureText(answer) {
  const said = answer.body && typeof answer.body.error === "string" ? answer.body.error : "";
  return said || `The server answered HTTP ${answer.status}`;
}

/**
 * Loads one view's data; errors go to that section's .view-error line.
 * Returns the answer (also for the statuses in `expected`) or null.
 */
async function loadView(sectionId, path, expected = []) {
  const box = document.querySelector(`#${sectionId} .view-error`);
  let answer;
  try {
    answer = await api(path);
  } catch (e) {
    say(box, `Could not reach the server: ${e.message}`);
    return null;
  }
  if (!answer) return null;
  if (answer.ok || expected.includes(answer.status)) {
    say(box, "");
    return answer;
  }
  say(box, failureText(answer));
  return null;
}

/* ---------- sign-in, sign-out ---------- */

function showSignin(message) {
  stopStream();
  clearViews();
  $("dashboard").hidden = true;
  $("controls").hidden = true;
  $("signin").hidden = false;
  say($("signin-error"), message);
  $("token").value = "";
  $("token").focus();
}

function showDashboard() {
  $("signin").hidden = true;
  $("dashboard").hidden = false;
  $("controls").hidden = false;
  $("main").focus({ preventScroll: true });
  refreshAll();
  startStream();
}

async function onSignin(event) {
  event.preventDefault();
  const value = $("token").value.trim();
  if (!value) {
    say($("signin-error"), "Enter the API token");
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, value);
  const button = event.currentTarget.querySelector("button");
  button.disabled = true;
  try {
    // One small call first: a wrong token is refused once, not by every view at once.
    const day = todayUtc();
    if (await api(`/stats?date_from=${day}&date_to=${day}`)) showDashboard();
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    say($("signin-error"), `Could not reach the server: ${e.message}`);
  } finally {
    button.disabled = false;
  }
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  showSignin("");
}

/** A 401 anywhere. Several calls may be refused at once: act on the first. */
function refused() {
  if (token() === null) return;
  sessionStorage.removeItem(TOKEN_KEY);
  showSignin("That token was refused");
}

function clearViews() {
  state.today = null;
  state.stats = null;
  for (const id of ["today-rows", "today-total", "coverage-devices", "chart", "verify-body",
    "feed-list", "search-results", "device-list"]) {
    $(id).replaceChildren();
  }
  for (const id of ["today-day", "coverage-range", "thin-below", "chart-range", "stats-total",
    "search-summary", "updated"]) {
    $(id).textContent = "";
  }
  say($("search-error"), "");
  $("feed-empty").hidden = false;
  document.querySelectorAll(".view-error").forEach((box) => say(box, ""));
}

/* ---------- refreshing the views ---------- */

const state = { today: null, stats: null, refreshing: null, again: false, timer: null };

/** Reloads every view; a call while one runs queues one more pass. */
function refreshAll() {
  if (state.refreshing) {
    state.again = true;
    return state.refreshing;
  }
  state.refreshing = (async () => {
    do {
      state.again = false;
      await loadAll();
    } while (state.again && token() !== null);
  })().finally(() => {
    state.refreshing = null;
  });
  return state.refreshing;
}

async function loadAll() {
  // /stats needs the server's "today" (UTC), which /overview gives.
  const today = await loadOverview();
  await loadStats(today || todayUtc());
  if (token() !== null) $("updated").textContent = `updated ${clock()}`;
}

/** Refresh soon, at most once a second however many events arrive. */
function scheduleRefresh() {
  if (state.timer) return;
  state.timer = setTimeout(() => {
    state.timer = null;
    if (token() !== null) refreshAll();
  }, 1000);
}

/* ---------- Today and Coverage (/overview) ---------- */

async function loadOverview() {
  const answer = await loadView("today", "/overview?days=30");
  if (!answer || !answer.body) return null;
  const overview = answer.body;
  state.today = overview.today;
  renderToday(overview.today, overview.devices || []);
  renderCoverage(overview.coverage || { devices: [] });
  showVerify(overview.verify);
  fillDeviceList(overview);
  return overview.today;
}

function renderToday(day, devices) {
  $("today-day").textContent = day ? `${day} (UTC)` : "";
  const rows = devices.map((d) => el("tr", { "data-device": d.device, class: d.failed > 0 ? "has-failed" : null },
    el("th", { scope: "row", class: "device", text: d.device }),
    el("td", { class: "num files", text: d.files }),
    el("td", { class: "num bytes", "data-bytes": d.bytes, title: `${d.bytes} bytes`, text: humanBytes(d.bytes) }),
    el("td", { class: d.failed > 0 ? "num failed bad" : "num failed", text: d.failed })));
  if (!rows.length) {
    rows.push(el("tr", {}, el("td", { colspan: 4, class: "empty", text: "Nothing archived yet today." })));
  }
  $("today-rows").replaceChildren(...rows);
  $("today-total").replaceChildren(...(devices.length < 2 ? [] : [el("tr", {},
    el("th", { scope: "row", text: "All devices" }),
    el("td", { class: "num", text: sum(devices, "files") }),
    el("td", { class: "num", text: humanBytes(sum(devices, "bytes")) }),
    el("td", { class: "num", text: sum(devices, "failed") }))]));
}

function renderCoverage(coverage) {
  const devices = coverage.devices || [];
  const parts = [];
  if (coverage.from && coverage.to) parts.push(`${coverage.from} to ${coverage.to}`);
  if (coverage.indexed !== undefined) parts.push(`${coverage.indexed} archives indexed`);
  if (coverage.unindexed) parts.push(`${coverage.unindexed} unindexed`);
  $("coverage-range").textContent = parts.join(" · ");
  $("thin-below").textContent = coverage.thin_below !== undefined ? ` (below ${coverage.thin_below}% of median)` : "";
  document.querySelector("#coverage .legend").hidden = !devices.length;
  const cards = devices.map((d) => deviceCoverage(d, coverage.to));
  if (!cards.length) {
    cards.push(el("p", { class: "note", text: "The content index is empty: there is no coverage to show yet." }));
  }
  $("coverage-devices").replaceChildren(...cards);
}

/** One device's calendar: a cell per day from its first day to `to`. */
function deviceCoverage(d, to) {
  const lines = new Map((d.days || []).map((x) => [x.day, x]));
  const thin = new Map((d.thin || []).map((x) => [x.day, x]));
  const missing = new Set(d.missing || []);
  const known = [...lines.keys(), ...missing].sort();
  const card = el("div", { class: "device-coverage", "data-device": d.device },
    el("h3", { text: d.device }),
    el("p", { class: "muted small", text: `median ${d.median} lines a day · ${missing.size} missing · ${thin.size} thin` }));
  if (!known.length || !to) {
    card.append(el("p", { class: "muted", text: "No lines in this window." }));
    return card;
  }
  const first = known[0];
  const grid = el("div", { class: "calendar" });
  for (const name of ["M", "T", "W", "T", "F", "S", "S"]) grid.append(el("span", { class: "dow", "aria-hidden": "true", text: name }));
  // Blank cells so that each column is one weekday (Monday first).
  const offset = (new Date(Date.parse(first)).getUTCDay() + 6) % 7;
  for (let i = 0; i < offset; i += 1) grid.append(el("span", { class: "pad", "aria-hidden": "true" }));
  for (let i = 0; i <= daysBetween(first, to); i += 1) {
    grid.append(dayCell(addDays(first, i), lines, thin, missing, d.median));
  }
  card.append(grid, el("p", { class: "muted small range", text: `${first} to ${to}` }), coverageNotes(d));
  return card;
}

function dayCell(day, lines, thin, missing, median) {
  const seen = lines.get(day);
  const low = thin.get(day);
  let kind = "ok";
  let mark = "";
  let tip;
  if (low) {
    kind = "thin";
    mark = "·";
    tip = `${day}: ${low.lines} lines, ${low.percent}% of median (thin)`;
  } else if (seen) {
    const pct = median > 0 ? `, ${Math.round((seen.lines * 100) / median)}% of median` : "";
    tip = `${day}: ${seen.lines} lines${pct}, ${seen.archives} archives`;
  } else {
    // In the span but without lines: listed in `missing` by the API.
    kind = "missing";
    mark = "×";
    tip = `${day}: no lines${missing.has(day) ? "" : " (not reported)"}`;
  }
  return el("span", { class: `day ${kind}`, "data-day": day, title: tip, role: "img", "aria-label": tip, text: mark });
}

/** The missing and thin days in words, for readers who cannot see the grid. */
function coverageNotes(d) {
  const list = el("ul", { class: "coverage-notes small" });
  if (d.missing && d.missing.length) {
    list.append(el("li", {}, el("span", { class: "tag missing", text: "× missing" }), ` ${d.missing.join(", ")}`));
  }
  if (d.thin && d.thin.length) {
    const days = d.thin.map((t) => `${t.day} (${t.percent}%)`).join(", ");
    list.append(el("li", {}, el("span", { class: "tag thin", text: "· thin" }), ` ${days}`));
  }
  return list;
}

/** The search form's device suggestions, from the devices the overview knows. */
function fillDeviceList(overview) {
  const names = new Set([...(overview.devices || []), ...((overview.coverage || {}).devices || [])].map((d) => d.device));
  $("device-list").replaceChildren(...[...names].sort().map((name) => el("option", { value: name })));
}

/* ---------- Bytes per day (/stats) ---------- */

async function loadStats(today) {
  const from = addDays(today, -29);
  const answer = await loadView("bytes-chart", `/stats?date_from=${from}&date_to=${today}`);
  if (!answer || !Array.isArray(answer.body)) return;
  state.stats = { days: answer.body, from, to: today };
  $("chart-range").textContent = `${from} to ${today}, uploaded`;
  drawChart();
  renderStatsTotal(answer.body);
}

function renderStatsTotal(days) {
  const files = sum(days, "files");
  const bytes = sum(days, "bytes_uploaded");
  const total = $("stats-total");
  total.dataset.files = files;
  total.dataset.bytes = bytes;
  total.textContent = `${files} files, ${humanBytes(bytes)} uploaded in these 30 days`;
}

/** Axis top and step: 2 steps of a round number in the unit the top needs. */
function niceScale(max) {
  let unit = 1;
  while (max / unit >= 1024 && unit < 1024 ** 5) unit *= 1024;
  const half = Math.max(max / unit / 2, 1);
  const power = 10 ** Math.floor(Math.log10(half));
  const step = [1, 2, 2.5, 5, 10].map((f) => f * power).find((s) => s >= half);
  return { step: step * unit, top: 2 * step * unit };
}

/** The chart is drawn at the container's pixel width, so text keeps its size. */
function drawChart() {
  const box = $("chart");
  if (!state.stats) return;
  const { days, from, to } = state.stats;
  if (!days.length) {
    box.replaceChildren(el("p", { class: "note", text: "No files in these 30 days." }));
    return;
  }
  const width = Math.max(260, box.clientWidth || 600);
  const height = 190;
  const m = { left: 64, right: 8, top: 14, bottom: 24 };
  const plotW = width - m.left - m.right;
  const plotH = height - m.top - m.bottom;
  const slots = daysBetween(from, to) + 1;
  const slot = plotW / slots;
  const gap = Math.min(4, slot * 0.25);
  const { step, top } = niceScale(Math.max(0, ...days.map((d) => Number(d.bytes_uploaded) || 0)));
  const y = (bytes) => m.top + plotH - (bytes / top) * plotH;

  const chart = svgEl("svg", { width, height, viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": `Bytes uploaded per day from ${from} to ${to}` });
  for (let i = 0; i <= 2; i += 1) {
    chart.append(svgEl("line", { class: "grid", x1: m.left, x2: width - m.right, y1: y(i * step), y2: y(i * step) }),
      svgEl("text", { class: "tick", x: m.left - 6, y: y(i * step) + 4, "text-anchor": "end" },
        humanBytes(i * step).replace(".0 ", " ")));
  }
  for (const d of days) chart.append(...bar(d, m.left + daysBetween(from, d.date) * slot + gap / 2, slot - gap, y));
  chart.append(svgEl("text", { class: "tick", x: m.left, y: height - 6 }, from),
    svgEl("text", { class: "tick", x: width - m.right, y: height - 6, "text-anchor": "end" }, to));
  box.replaceChildren(chart);
}

/** One day's bar (with a "!" above it on a day with failures) and its tooltip. */
function bar(d, x, w, y) {
  const bytes = Number(d.bytes_uploaded) || 0;
  const failed = Number(d.failed) > 0;
  const top = bytes > 0 ? Math.min(y(bytes), y(0) - 1) : y(0); // a non-empty day stays visible
  const rect = svgEl("rect", { class: failed ? "bar has-failed" : "bar", "data-date": d.date, "data-bytes": bytes,
    x: x.toFixed(1), y: top.toFixed(1), width: Math.max(1, w).toFixed(1), height: (y(0) - top).toFixed(1) });
  const verify = d.last_verify ? `, last verify ${d.last_verify}` : "";
  rect.append(svgEl("title", {}, `${d.date}: ${humanBytes(bytes)} uploaded, ${d.files} files, ` +
    `${d.uploaded} uploaded, ${d.skipped_exists} skipped, ${d.failed} failed${verify}`));
  if (!failed) return [rect];
  return [rect, svgEl("text", { class: "fail-mark", x: (x + w / 2).toFixed(1), y: (top - 3).toFixed(1),
    "text-anchor": "middle", "aria-hidden": "true" }, "!")];
}

/* ---------- Last verify (from /overview) ---------- */

const VERIFY_COUNTS = [["checked", "Checked"], ["ok", "OK"], ["missing", "Missing"], ["altered", "Altered"],
  ["size_mismatch", "Size mismatch"], ["extra", "Extra"], ["errors", "Errors"]];

// The last verify comes with /overview (null before the first), so a new
// install asks for nothing that answers 404: the browser logs every
// non-2xx answer as a console error.
function showVerify(v) {
  if (!v) {
    $("verify-body").replaceChildren(el("p", { class: "note", text: "No verify has run yet." }));
    return;
  }
  renderVerify(v);
}

function renderVerify(v) {
  // Anything but ok is a failure ("interrupted" too), also by class for styling.
  const word = String(v.status).replace(/[^\w-]/g, "_");
  const status = word === "ok" || word === "failed" ? word : `failed ${word}`;
  const head = el("p", { class: "verify-head" },
    el("span", { class: `status ${status}`, "data-field": "status", text: v.status }),
    el("span", {}, "finished ", el("time", { "data-field": "finished_at", datetime: v.finished_at, text: v.finished_at })),
    el("span", { class: "muted", text: `${humanBytes(v.bytes_read)} read in ${(v.duration_ms / 1000).toFixed(1)} s` }));
  const counts = el("dl", { class: "counts" }, ...VERIFY_COUNTS.map(([field, label]) => {
    const bad = field !== "checked" && field !== "ok" && v[field] > 0;
    return el("div", { class: bad ? "count bad" : "count" },
      el("dt", { text: label }), el("dd", { "data-field": field, text: v[field] }));
  }));
  $("verify-body").replaceChildren(head, counts, findings(v.findings || []));
}

function findings(list) {
  if (!list.length) return el("p", { class: "muted", text: "No findings: every object checked was as archived." });
  const rows = list.map((f) => el("tr", { "data-key": f.key },
    el("td", { class: "key" }, el("code", { text: f.key })),
    el("td", {}, el("span", { class: "tag missing", text: f.result })),
    el("td", { class: "detail", text: f.detail || "" })));
  return el("div", {}, el("h3", { text: `Findings (${list.length})` }), tableWrap("Verify findings",
    ["Key", "Result", "Detail"], rows));
}

/**
 * A table in its own horizontal scroller (so the page never scrolls
 * sideways). Cells get their column's name in data-label: on a narrow
 * screen the CSS stacks each row and shows those names.
 */
function tableWrap(label, headings, rows, numeric = []) {
  const head = el("tr", {}, ...headings.map((h, i) =>
    el("th", { scope: "col", class: numeric.includes(i) ? "num" : null, text: h })));
  for (const row of rows) {
    [...row.cells].forEach((cell, i) => {
      if (i > 0) cell.dataset.label = headings[i];
    });
  }
  return el("div", { class: "table-wrap", tabindex: 0, role: "region", "aria-label": label },
    el("table", { class: "stack" }, el("thead", {}, head), el("tbody", {}, ...rows)));
}

/* ---------- Live feed (/events) ---------- */

const live = { ctrl: null, timer: null, lastId: null, retryMs: 3000, failures: 0 };

function setLive(word) {
  const node = $("live-state");
  node.textContent = word;
  node.className = `live-state ${word}`;
}

function startStream() {
  stopStream();
  connect();
}

function stopStream() {
  if (live.ctrl) live.ctrl.abort();
  live.ctrl = null;
  clearTimeout(live.timer);
  live.lastId = null;
  setLive("offline");
}

/** One connection: open, read until the server ends it, then plan the next. */
async function connect() {
  const ctrl = new AbortController();
  live.ctrl = ctrl;
  const headers = { Authorization: `Bearer ${token()}` };
  if (live.lastId !== null) headers["Last-Event-ID"] = live.lastId;
  let res;
  try {
    res = await fetch("/events", { headers, cache: "no-store", signal: ctrl.signal });
  } catch {
    if (!ctrl.signal.aborted) retryLater(null, "offline");
    return;
  }
  if (res.status === 401) return refused();
  if (!res.ok || !res.body) {
    res.body?.cancel().catch(() => {});
    // 503: too many streams open; the server says when to come back.
    const after = res.status === 503 ? Number(res.headers.get("Retry-After")) * 1000 || null : null;
    return retryLater(after, res.status === 503 ? "reconnecting" : "offline");
  }
  live.failures = 0;
  setLive("live");
  try {
    await readStream(res.body);
  } catch {
    // Dropped mid-stream (or aborted by sign-out, checked below).
  }
  if (live.ctrl === ctrl && !ctrl.signal.aborted) retryLater(live.retryMs, "reconnecting");
}

/** Reconnect after `ms`, or after a growing delay when the server gave none. */
function retryLater(ms, word) {
  let delay = ms;
  if (delay === null) {
    delay = Math.min(30000, live.retryMs * 2 ** live.failures);
    live.failures = Math.min(live.failures + 1, 8);
  }
  setLive(word);
  clearTimeout(live.timer);
  live.timer = setTimeout(connect, delay);
}

/** Decodes the byte stream into lines (CRLF, LF or CR) and feeds the parser. */
async function readStream(body) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  const parser = sseParser();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.search(/[\r\n]/)) >= 0) {
      // A CR at the very end may be half of a CRLF: wait for the next chunk.
      if (buffer[end] === "\r" && end === buffer.length - 1) break;
      const size = buffer.startsWith("\r\n", end) ? 2 : 1;
      parser(buffer.slice(0, end));
      buffer = buffer.slice(end + size);
    }
  }
}

/** The event-stream rules (fields id, event, data, retry; ":" comments). */
function sseParser() {
  let data = [];
  let name = "";
  let id = live.lastId;
  return (line) => {
    if (line === "") {
      live.lastId = id;
      if (data.length) onEvent(name || "message", id, data.join("\n"));
      data = [];
      name = "";
      return;
    }
    if (line.startsWith(":")) return; // a comment: the server's keep-alive
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") data.push(value);
    else if (field === "event") name = value;
    else if (field === "id" && !value.includes("\0")) id = value;
    else if (field === "retry" && /^\d+$/.test(value)) live.retryMs = Number(value);
  };
}

function onEvent(name, id, text) {
  let data;
  try {
    data = JSON.parse(text);
  } catch {
    data = null;
  }
  addFeedItem(name, id, data && typeof data === "object" ? data : { text });
  if (REFRESH_ON.has(name)) scheduleRefresh();
}

/** The words of one event, as a list of strings and elements. */
function describe(name, d) {
  const key = () => el("code", { class: "key", text: d.key });
  const secs = (s) => (s === undefined ? "" : ` in ${s} s`);
  switch (name) {
    case "file_archived":
      return [verb(d.status === "uploaded" || !d.status ? "archived" : d.status), key(),
        `${humanBytes(d.bytes)}${secs(d.seconds)}`];
    case "file_failed":
      return [verb("failed"), key(), `${d.status}: ${d.reason}`];
    case "run_started":
      return [verb(`run ${d.run_id} started`), `on ${d.host}: ${d.source} → ${d.destination}`];
    case "run_finished":
      return [verb(`run ${d.run_id} finished ${d.status}:`), `${d.files} files, ${d.uploaded} uploaded, ` +
        `${d.skipped} skipped, ${d.failed} failed, ${humanBytes(d.bytes)}${secs(d.seconds)}`];
    case "verify_finished":
      return [verb(`verify ${d.id} ${d.status}:`), `${d.checked} checked, ${d.ok} ok, ${d.missing} missing, ` +
        `${d.altered} altered, ${d.size_mismatch} size mismatch, ${d.extra} extra, ${d.errors} errors`];
    case "index_updated":
      return [verb("index updated:"), `${d.indexed} indexed, ${d.archives} in the index`];
    case "reset":
      return [verb("stream reset:"), `${d.reason}; views reloaded`];
    default:
      return [verb(name), JSON.stringify(d)];
  }
}

const verb = (text) => el("span", { class: "verb", text });

function addFeedItem(name, id, data) {
  const classes = ["event", name.replace(/[^\w-]/g, "_")];
  if (name === "file_failed") classes.push("failure");
  if ((name === "run_finished" || name === "verify_finished") && data.status !== "ok") classes.push("warn");
  const now = new Date();
  const item = el("li", { class: classes.join(" "), "data-id": id, "data-key": name.startsWith("file_") ? data.key : null,
    "data-received": now.getTime() }, el("time", { datetime: now.toISOString(), text: clock(now) }));
  // Spaces between the parts so the item's text reads as one sentence.
  for (const part of describe(name, data)) item.append(" ", part);
  const list = $("feed-list");
  list.prepend(item);
  while (list.children.length > FEED_MAX) list.lastElementChild.remove();
  $("feed-empty").hidden = true;
}

/* ---------- Search (/search) ---------- */

async function onSearch(event) {
  event.preventDefault();
  const form = event.currentTarget;
  const params = new URLSearchParams();
  for (const name of ["device", "since", "until", "action", "ip"]) {
    const value = form.elements[name].value.trim();
    if (value) params.set(name, value); // empty filters are left out, not sent empty
  }
  params.set("limit", SEARCH_LIMIT);
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    await runSearch(params);
  } finally {
    button.disabled = false;
  }
}

async function runSearch(params) {
  let answer;
  try {
    answer = await api(`/search?${params}`);
  } catch (e) {
    say($("search-error"), `Could not reach the server: ${e.message}`);
    return;
  }
  if (!answer) return;
  if (!answer.ok || !answer.body) {
    say($("search-error"), failureText(answer));
    $("search-summary").textContent = "";
    $("search-results").replaceChildren();
    return;
  }
  say($("search-error"), "");
  renderSearch(answer.body);
}

function renderSearch(result) {
  const archives = result.archives || [];
  const summary = $("search-summary");
  summary.replaceChildren(el("span", { "data-field": "matched", text: result.matched }), " archives, ",
    el("span", { "data-field": "lines", text: result.lines }), " lines, ",
    el("span", { "data-field": "unindexed", text: result.unindexed }), " unindexed");
  if (archives.length < result.matched) summary.append(` (showing the first ${archives.length})`);
  if (!archives.length) {
    $("search-results").replaceChildren(el("p", { class: "muted", text: "No archive matches." }));
    return;
  }
  $("search-results").replaceChildren(tableWrap("Search results", ["Key", "Devices", "Days", "Lines"],
    archives.map(searchRow), [3]));
}

function searchRow(a) {
  const keyCell = el("td", { class: "key" }, el("code", { text: a.key }));
  if (a.incomplete) keyCell.append(" ", el("span", { class: "tag thin", title: a.incomplete, text: "partial index" }));
  let days = a.first_day || "–";
  if (a.last_day && a.last_day !== a.first_day) days = `${a.first_day} to ${a.last_day}`;
  return el("tr", { "data-key": a.key }, keyCell,
    el("td", { text: (a.devices || []).join(", ") }),
    el("td", { class: "days", text: days }),
    // Not exact: an upper bound (the ≤ is drawn by CSS, so the text stays the number).
    el("td", { class: a.exact ? "num lines" : "num lines upper", title: a.exact ? null : "upper bound", text: a.lines }));
}

/* ---------- start ---------- */

function start() {
  $("signin").addEventListener("submit", onSignin);
  $("signout").addEventListener("click", signOut);
  $("refresh").addEventListener("click", () => refreshAll());
  $("search-form").addEventListener("submit", onSearch);
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(drawChart, 150);
  });
  if (token()) showDashboard();
  else showSignin("");
}

start();
