//! The shipped Grafana dashboard (`etc/grafana/fgbackup.json`) and Prometheus
//! alert rules (`etc/prometheus/fgbackup-alerts.yml`) against a real
//! fgbackup: every metric they name must be one a real run, verify and
//! daemon write (in `/metrics` or the node_exporter textfile), or one of the
//! few external metrics listed in [`EXTERNAL`]; every API URL of an Infinity
//! panel must answer 200 with JSON holding the columns the panel reads.
//!
//! Grafana itself cannot run here; the rules' own behaviour is covered by
//! `promtool test rules etc/prometheus/fgbackup-alerts.test.yml`.

use crate::common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use common::api::{Api, TOKEN};
use common::*;
use serde_json::Value;

const DASHBOARD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/etc/grafana/fgbackup.json");
const ALERTS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/etc/prometheus/fgbackup-alerts.yml"
);

/// Metrics the files may use that fgbackup does not write: Prometheus's own
/// `up` and node_exporter's filesystem figures (the collector's log disk).
const EXTERNAL: &[&str] = &[
    "up",
    "node_filesystem_avail_bytes",
    "node_filesystem_size_bytes",
];

/// Words of PromQL that are not metric names: aggregations (which may be
/// followed by `by (...)` before their parenthesis), operators, constants.
const NOT_METRICS: &[&str] = &[
    "sum",
    "min",
    "max",
    "avg",
    "group",
    "stddev",
    "stdvar",
    "count",
    "count_values",
    "bottomk",
    "topk",
    "quantile",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "atan2",
    "inf",
    "nan",
];

/// PromQL words followed by a parenthesised list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// `expr` without string literals, label matchers `{...}` and ranges `[...]`.
fn strip_promql(expr: &str) -> String {
    let mut out = String::new();
    let mut chars = expr.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let mut escaped = false;
                for d in chars.by_ref() {
                    if d == c && !escaped {
                        break;
                    }
                    escaped = d == '\\' && !escaped;
                }
            }
            '{' => for _ in chars.by_ref().take_while(|d| *d != '}') {},
            '[' => for _ in chars.by_ref().take_while(|d| *d != ']') {},
            _ => out.push(c),
        }
        if matches!(c, '{' | '[' | '"' | '\'' | '`') {
            out.push(' ');
        }
    }
    out
}

/// Metric names in one PromQL expression (Grafana variables such as
/// `$mountpoint` already removed by [`strip_promql`] or skipped here).
fn metric_names(expr: &str) -> Vec<String> {
    let chars: Vec<char> = strip_promql(expr).chars().collect();
    let is_word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if !(c.is_ascii_alphabetic() || c == '_' || c == ':' || c == '$' || c.is_ascii_digit()) {
            i += 1;
            continue;
        }
        let start = i;
        i += 1;
        while i < chars.len() && (is_word(chars[i]) || chars[i] == '.') {
            i += 1;
        }
        let word: String = chars[start..i].iter().collect();
        let next = chars[i..].iter().find(|c| !c.is_whitespace()).copied();
        if LABEL_LISTS.contains(&word.as_str()) {
            // `group_left` may stand without its list.
            while next == Some('(') && i < chars.len() && chars[i] != ')' {
                i += 1;
            }
        } else if !(c == '$'
            || c.is_ascii_digit()
            || next == Some('(')
            || NOT_METRICS.contains(&word.as_str()))
        {
            names.push(word);
        }
    }
    names
}

#[test]
fn metric_names_are_found_in_promql() {
    assert_eq!(
        metric_names(
            r#"sum by (route, code) (rate(fgbackup_api_requests_total{code="2xx",x="up"}[$__rate_interval])) / on(job) group_left up offset 1h"#
        ),
        ["fgbackup_api_requests_total", "up"]
    );
    assert_eq!(
        metric_names("time() - max(fgbackup_last_success_timestamp_seconds) > 6 * 3600"),
        ["fgbackup_last_success_timestamp_seconds"]
    );
    assert_eq!(
        metric_names(
            r#"histogram_quantile(0.99, sum(rate(a_bucket[5m])) by (le)) and b{m=~"$mountpoint"} < 1e6"#
        ),
        ["a_bucket", "b"]
    );
}

fn dashboard() -> Value {
    let text = std::fs::read_to_string(DASHBOARD).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{DASHBOARD}: {e}"))
}

/// Every query target of the dashboard (panels and panels inside rows).
fn targets(dash: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    let mut panels: Vec<&Value> = dash["panels"].as_array().unwrap().iter().collect();
    while let Some(p) = panels.pop() {
        panels.extend(p["panels"].as_array().into_iter().flatten());
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((p["title"].as_str().unwrap_or("").to_string(), t.clone()));
        }
    }
    out
}

/// The PromQL of the dashboard's Prometheus targets, with the panel title.
/// Panics on a target that is neither Prometheus nor Infinity, so none can
/// escape the checks.
fn dashboard_promql(dash: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (title, t) in targets(dash) {
        match (
            t["datasource"]["type"].as_str(),
            t["datasource"]["uid"].as_str(),
        ) {
            (Some("prometheus"), Some("${prometheus}")) => {
                out.push((title, t["expr"].as_str().unwrap().to_string()))
            }
            (Some("yesoreyeram-infinity-datasource"), Some("${infinity}")) => {}
            other => panic!("panel '{title}': unexpected data source {other:?}"),
        }
    }
    out
}

/// The `expr:` lines of the alert rules; each alert has exactly one, on one line.
fn alert_promql() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(ALERTS).unwrap();
    let mut out = Vec::new();
    let mut alert = String::new();
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert:") {
            alert = name.trim().to_string();
        } else if let Some(expr) = line.strip_prefix("expr:") {
            let expr = expr.trim();
            assert!(
                !expr.is_empty() && !expr.starts_with(['|', '>', '"', '\'']),
                "{alert}: write expr on one line, unquoted"
            );
            out.push((alert.clone(), expr.to_string()));
        }
    }
    let alerts = text.matches("- alert:").count();
    assert_eq!(out.len(), alerts, "one expr: line per alert");
    assert!(alerts >= 5, "{ALERTS}: {alerts} alerts");
    out
}

/// Names of the samples in a Prometheus text exposition.
fn exposed_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_string())
        .collect()
}

/// Names used by `exprs` that are neither exposed nor external, with where.
fn unknown_metrics(exprs: &[(String, String)], exposed: &BTreeSet<String>) -> Vec<String> {
    let mut unknown = Vec::new();
    for (place, expr) in exprs {
        for name in metric_names(expr) {
            if !exposed.contains(&name) && !EXTERNAL.contains(&name.as_str()) {
                unknown.push(format!("{name} (in '{place}': {expr})"));
            }
        }
    }
    unknown
}

/// A collector after a real upload run (writing the textfile) and a real
/// verify, then `fgbackup daemon` on its inventory once its own first upload
/// cycle (one new file, one truncated: `failed_gzip`) has finished.
struct Collector {
    ws: Workspace,
    api: Api,
    textfile: PathBuf,
}

fn collector() -> Collector {
    let ws = Workspace::new();
    for i in 0..4 {
        ws.write_gz(&format!("FGT-{}/fw-{i:03}.log.gz", i % 2), 20, i);
    }
    let textfile = ws.tmp.path().join("fgbackup.prom");
    let tf = textfile.to_str().unwrap().to_string();
    assert_exit(&ws.upload_local(&["--metrics-textfile", &tf], &[]), 0);
    assert_exit(&ws.on_archive("verify", &[]), 0);
    ws.write_gz("FGT-0/fw-late.log.gz", 20, 9);
    let whole = std::fs::read(ws.write_gz("FGT-1/cut.log.gz", 300, 7)).unwrap();
    ws.write_raw("FGT-1/cut.log.gz", &whole[..whole.len() - 40]);
    let args = ws.local_upload_args(&["--metrics-textfile", &tf, "--gzip-check", "always"]);
    let api = Api::daemon(&ws, &args, "1h", &[("APP_TOKENS", TOKEN)]);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !api
        .get("/metrics", Some(TOKEN))
        .1
        .contains("fgbackup_daemon_last_run_timestamp_seconds")
    {
        assert!(Instant::now() < deadline, "the daemon's run never finished");
        std::thread::sleep(Duration::from_millis(50));
    }
    Collector { ws, api, textfile }
}

#[test]
fn every_metric_of_the_dashboard_and_alerts_exists_in_real_output() {
    let c = collector();
    let (status, metrics, _) = c.api.get("/metrics", Some(TOKEN));
    assert_eq!(status, 200, "{metrics}");
    let textfile = std::fs::read_to_string(&c.textfile).unwrap();
    let mut exposed = exposed_names(&metrics);
    exposed.extend(exposed_names(&textfile));
    for sure in [
        "fgbackup_verify_last_success",
        "fgbackup_run_success",
        "fgbackup_daemon_stalled",
    ] {
        assert!(
            exposed.contains(sure),
            "{sure} not written:\n{metrics}\n{textfile}"
        );
    }

    let mut exprs = dashboard_promql(&dashboard());
    exprs.extend(alert_promql());
    let unknown = unknown_metrics(&exprs, &exposed);
    assert!(
        unknown.is_empty(),
        "metrics that no real fgbackup output has (misspelt, renamed or removed?):\n{}",
        unknown.join("\n")
    );

    // The check is not vacuous: it sees the metrics used, external ones
    // included, and a misspelt name is reported.
    let used: BTreeSet<String> = exprs.iter().flat_map(|(_, e)| metric_names(e)).collect();
    assert!(used.len() >= 15, "{used:?}");
    for external in EXTERNAL {
        assert!(used.contains(*external), "{external} is allowed but unused");
    }
    let misspelt = [("test".to_string(), "fgbackup_run_sucess == 0".to_string())];
    assert_eq!(unknown_metrics(&misspelt, &exposed).len(), 1);
    drop(c.ws);
}

/// An Infinity URL with the dashboard's variables filled in as Grafana
/// would, relative to the API (`${api}` is its base URL).
fn api_path(url: &str) -> String {
    let path = url
        .strip_prefix("${api}")
        .unwrap_or_else(|| panic!("Infinity URL not under ${{api}}: {url}"))
        .replace("${__from:date:YYYY-MM-DD}", "2000-01-01")
        .replace("${__to:date:YYYY-MM-DD}", "2999-12-31");
    assert!(!path.contains('$'), "unknown variable in {url}");
    path
}

#[test]
fn every_endpoint_of_the_infinity_panels_answers_json_with_their_columns() {
    let c = collector();
    let dash = dashboard();
    let vars: BTreeMap<&str, &str> = dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (v["name"].as_str().unwrap(), v["type"].as_str().unwrap()))
        .collect();
    for (name, kind) in [
        ("prometheus", "datasource"),
        ("infinity", "datasource"),
        ("api", "textbox"),
    ] {
        assert_eq!(vars.get(name), Some(&kind), "variable {name}: {vars:?}");
    }
    let mut checked = 0;
    for (title, t) in targets(&dash) {
        let Some(url) = t["url"].as_str() else {
            continue;
        };
        let path = api_path(url);
        let (status, body, headers) = c.api.get(&path, Some(TOKEN));
        assert_eq!(status, 200, "panel '{title}': GET {path}: {body}");
        assert!(
            headers
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case("content-type") && v == "application/json"),
            "{path}: {headers:?}"
        );
        let json: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}"));
        let first = match &json {
            Value::Array(rows) => rows.first().cloned(),
            object => Some(object.clone()),
        };
        let first = first.unwrap_or_else(|| panic!("panel '{title}': GET {path} gave no rows"));
        for col in t["columns"].as_array().unwrap() {
            let selector = col["selector"].as_str().unwrap();
            assert!(
                first.get(selector).is_some(),
                "panel '{title}' reads column '{selector}' that GET {path} lacks: {first}"
            );
        }
        checked += 1;
    }
    assert!(checked >= 3, "{checked} Infinity targets");
}
