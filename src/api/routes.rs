//! The endpoints: which [`Route`] a path names, the one dispatch, and each
//! route's parameters and answer.

use serde_json::{Value, json};
use tiny_http::{Request, Response};

use super::gate::{admit, connect};
use super::memo::Memo;
use super::prometheus::render_db_metrics;
use super::{Answer, MAX_LIMIT, ServeConfig, error, header, json_answer, json_text, query};
use crate::inventory::status::{Status, StatusFilter};
use crate::inventory::{Filters, Freshness, Reader};
use crate::metrics::{self, Metrics};

/// Findings listed by `/verifications/last` (the rest: `fgbackup verify`'s
/// report and the inventory).
pub(super) const MAX_FINDINGS: u32 = 50;

/// Answers one request: the checks any request must pass, then its route
/// on this worker's database connection (opened again after a failure).
pub(super) fn handle(
    request: &Request,
    cfg: &ServeConfig,
    metrics: &Metrics,
    worker: &mut Worker,
) -> (Route, Answer) {
    let (route, path, params) = match admit(request, cfg) {
        Ok(admitted) => admitted,
        Err(refused) => return refused,
    };
    worker.drop_if_stale(cfg);
    let Worker { reader, memo } = worker;
    let db = match connect(reader, &cfg.db_path, route) {
        Ok(db) => db,
        Err(answer) => return (route, answer),
    };
    // Pages and stats depend on the data only (not on the clock): kept
    // while the inventory is unchanged.
    let version = match route {
        Route::Backups | Route::BackupsLast | Route::Backup | Route::Stats => {
            db.data_version().ok()
        }
        _ => None,
    };
    if let Some(v) = version
        && let Some(kept) = memo.get(v, request.url())
    {
        return (route, kept);
    }
    let answer = match dispatch(route, path, &params, cfg, metrics, db) {
        Ok(a) => a,
        Err(Failure::Client(status, msg)) => error(status, msg),
        Err(Failure::Db(e)) => {
            log::error!("database query failed: {e}");
            // Reopen on the next request: the file may have been replaced.
            *reader = None;
            // Its data_version numbers die with it.
            *memo = Memo::default();
            if route == Route::Health {
                json_answer(503, &json!({"status": "error", "database": e.to_string()}))
            } else {
                error(500, "database query failed (see the server log)")
            }
        }
    };
    match version {
        Some(v) => (route, memo.put(v, request.url(), answer)),
        None => (route, answer),
    }
}

/// A worker's own state: its read-only connection (opened on first use,
/// again after a failure) and the answers it keeps ([`Memo`]).
#[derive(Default)]
pub(super) struct Worker {
    pub reader: Option<Reader>,
    pub memo: Memo,
}

impl Worker {
    /// Closes the connection (and forgets its kept answers) when the file
    /// at the database path was replaced or its schema changed: the next
    /// request opens it again.
    fn drop_if_stale(&mut self, cfg: &ServeConfig) {
        if self
            .reader
            .as_ref()
            .is_some_and(|r| r.freshness() != Freshness::Current)
        {
            log::info!(
                "{} was replaced or its schema changed: opening it again",
                cfg.db_path.display()
            );
            self.reader = None;
            self.memo = Memo::default();
        }
    }
}

/// An endpoint, named by a request's path. The method is no part of it:
/// the API is read-only, so the gate refuses any method but GET and HEAD
/// for every route alike (counted under the route the path names).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Route {
    Health,
    Metrics,
    Stats,
    Backups,
    BackupsLast,
    /// `/backups/{id}`; the id is read from the path when answering, so a
    /// bad one gets its own 400 rather than a 404.
    Backup,
    Presign,
    VerificationsLast,
    Search,
    /// `/events`: the live stream, answered on a thread of its own.
    Events,
    /// `/overview`: the dashboard's summary.
    Overview,
    /// `/ui/...`: the dashboard's files (no token: the page asks for one).
    Ui,
    /// `/upload/NAME`: pushes, answered on threads of their own.
    Upload,
    /// No endpoint (404), or a request refused before its path was read.
    Other,
}

impl Route {
    /// The route a path names; a trailing `/` is ignored.
    pub(super) fn parse(path: &str) -> Route {
        let parts: Vec<&str> = path.trim_end_matches('/').split('/').collect();
        match parts.as_slice() {
            ["", "health"] => Route::Health,
            ["", "metrics"] => Route::Metrics,
            ["", "stats"] => Route::Stats,
            ["", "backups"] => Route::Backups,
            ["", "backups", "last"] => Route::BackupsLast,
            ["", "backups", _] => Route::Backup,
            ["", "backups", _, "presign"] => Route::Presign,
            ["", "verifications", "last"] => Route::VerificationsLast,
            ["", "search"] => Route::Search,
            ["", "events"] => Route::Events,
            ["", "overview"] => Route::Overview,
            ["", "ui", ..] => Route::Ui,
            ["", "upload", _, ..] => Route::Upload,
            _ => Route::Other,
        }
    }

    /// The `route` label of the request counters ([`metrics::ROUTES`]).
    pub(super) fn name(self) -> &'static str {
        match self {
            Route::Health => "health",
            Route::Metrics => "metrics",
            Route::Stats => "stats",
            Route::Backups => "backups",
            Route::BackupsLast => "backups_last",
            Route::Backup => "backup",
            Route::Presign => "presign",
            Route::VerificationsLast => "verifications_last",
            Route::Search => "search",
            Route::Events => "events",
            Route::Overview => "overview",
            Route::Ui => "ui",
            Route::Upload => "upload",
            Route::Other => "other",
        }
    }

    /// Answered without a token: `/health` always (probes carry none),
    /// the dashboard's files (they hold no data; the page asks for a
    /// token), `/metrics` when the server was started to make it public.
    pub(super) fn is_public(self, metrics_public: bool) -> bool {
        matches!(self, Route::Health | Route::Ui) || (self == Route::Metrics && metrics_public)
    }
}

pub(super) enum Failure {
    Client(u16, String),
    Db(rusqlite::Error),
}

impl Failure {
    /// The answer to a client's mistake (a database failure is logged by
    /// [`handle`], never sent).
    pub(super) fn into_answer(self) -> Answer {
        match self {
            Failure::Client(status, msg) => error(status, msg),
            Failure::Db(_) => error(500, "database query failed (see the server log)"),
        }
    }
}

impl From<rusqlite::Error> for Failure {
    fn from(e: rusqlite::Error) -> Failure {
        Failure::Db(e)
    }
}

fn bad(msg: impl Into<String>) -> Failure {
    Failure::Client(400, msg.into())
}

pub(super) fn only_params(
    params: &[(String, String)],
    allowed: &[&str],
) -> std::result::Result<(), Failure> {
    for (k, _) in params {
        if !allowed.contains(&k.as_str()) {
            return Err(bad(if allowed.is_empty() {
                format!("unknown parameter '{k}': this endpoint takes none")
            } else {
                format!("unknown parameter '{k}' (allowed: {})", allowed.join(", "))
            }));
        }
    }
    Ok(())
}

pub(super) fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .rev()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// A whole-number parameter from 1 to `max`, `default` when absent; else a
/// 400 naming it and the range (`limit`, `days`).
pub(super) fn number_param(
    params: &[(String, String)],
    name: &str,
    default: u32,
    max: u32,
) -> std::result::Result<u32, Failure> {
    match param(params, name) {
        None => Ok(default),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=max).contains(n))
            .ok_or_else(|| {
                bad(format!(
                    "{name} '{v}' must be a whole number from 1 to {max}"
                ))
            }),
    }
}

fn date_param(
    params: &[(String, String)],
    name: &str,
) -> std::result::Result<Option<String>, Failure> {
    match param(params, name) {
        None => Ok(None),
        Some(v) if crate::timefmt::is_day(v) => Ok(Some(v.to_string())),
        Some(v) => Err(bad(format!(
            "{name} '{v}' is not a date: use a real day as YYYY-MM-DD, e.g. 2026-11-01"
        ))),
    }
}

/// `status=` of `/backups`: a status name from [`Status`], or `failed` for
/// every failure; anything else is refused with the list of valid values.
fn status_param(params: &[(String, String)]) -> std::result::Result<Option<StatusFilter>, Failure> {
    match param(params, "status").filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => StatusFilter::parse(v)
            .map(Some)
            .map_err(|e| bad(e.to_string())),
    }
}

/// `/health`: no token needed, so only verdicts and times.
fn health(
    params: &[(String, String)],
    cfg: &ServeConfig,
    metrics: &Metrics,
    db: &Reader,
) -> std::result::Result<Answer, Failure> {
    only_params(params, &[])?;
    let last = db.last_success()?;
    // /health needs no token: the verdict and its time only.
    let verify = db
        .last_verification()?
        .map(|v| json!({"status": v.json["status"], "finished_at": v.json["finished_at"]}));
    // The chain head is no secret: its sequence and SHA-256 are what an
    // auditor's monitoring records elsewhere, to catch a rollback.
    let manifest = db.last_manifest()?;
    let mut body = json!({"status": "ok", "database": "ok", "last_success": last,
                          "last_verify": verify, "manifest": manifest});
    let mut status = 200;
    if cfg.daemon_mode
        && let Some(upload) = metrics.upload_health()
    {
        if upload.stalled {
            status = 503;
            body["status"] = json!("degraded");
        }
        body["upload"] = upload_json(&upload);
    }
    if let Some(push) = &cfg.push {
        let free = push.spool_free();
        body["spool"] = json!({"free_bytes": free, "min_free_bytes": push.settings.min_free});
        if free.is_none_or(|f| f < push.settings.min_free) {
            body["status"] = json!("degraded");
        }
    }
    Ok(json_answer(status, &body))
}

/// Answers an admitted request by its route: the one match over [`Route`],
/// kept whole (and so a little over 60 lines) so that every endpoint and
/// the parameters it takes are seen in one place.
fn dispatch(
    route: Route,
    path: &str,
    params: &[(String, String)],
    cfg: &ServeConfig,
    metrics: &Metrics,
    db: &Reader,
) -> std::result::Result<Answer, Failure> {
    match route {
        Route::Health => health(params, cfg, metrics, db),
        Route::Backups => list(params, db),
        Route::BackupsLast => {
            only_params(params, &[])?;
            match db.last()? {
                Some(row) => Ok(json_text(200, row)),
                None => Err(Failure::Client(404, "the inventory is empty".into())),
            }
        }
        Route::Backup => {
            only_params(params, &[])?;
            let id = id_segment(path, 2)?;
            match db.by_id(id)? {
                Some(row) => Ok(json_text(200, row)),
                None => Err(Failure::Client(404, format!("no backup with id {id}"))),
            }
        }
        Route::Presign => presign(path, params, cfg, db),
        Route::Search => super::search::search(params, db),
        Route::Overview => super::overview::overview(params, db),
        Route::Ui => {
            only_params(params, &[])?;
            Ok(super::ui::file(path, cfg.ui))
        }
        // Answered by the front lane (`server::open_stream`), never here.
        Route::Events | Route::Upload => Err(Failure::Client(500, "internal error".into())),
        Route::VerificationsLast => {
            only_params(params, &[])?;
            match db.last_verification()? {
                Some(mut v) => {
                    let id = v.json["id"].as_i64().unwrap_or(0);
                    v.json["findings"] = Value::Array(db.findings(id, MAX_FINDINGS)?);
                    Ok(json_answer(200, &v.json))
                }
                None => Err(Failure::Client(
                    404,
                    "no verify has finished yet: run 'fgbackup verify'".into(),
                )),
            }
        }
        Route::Stats => {
            only_params(params, &["date_from", "date_to"])?;
            let from = date_param(params, "date_from")?;
            let to = date_param(params, "date_to")?;
            Ok(json_answer(
                200,
                &Value::Array(db.stats(from.as_deref(), to.as_deref())?),
            ))
        }
        Route::Metrics => {
            only_params(params, &[])?;
            let mut out = String::with_capacity(4096);
            render_db_metrics(&mut out, cfg, db)?;
            metrics.render(&mut out, cfg.daemon_mode);
            Ok(Response::from_data(out.into_bytes())
                .with_header(header("Content-Type", "text/plain; version=0.0.4")))
        }
        Route::Other => Err(Failure::Client(
            404,
            format!(
                "no such endpoint {path}: try /health, /backups, /backups/last, /backups/{{id}}, /stats, /verifications/last, /search, /events, /overview, /metrics, /ui/"
            ),
        )),
    }
}

/// The daemon's upload cycles in `/health`.
fn upload_json(u: &metrics::UploadHealth) -> Value {
    let mut v = json!({
        "state": if u.running_secs.is_some() { "running" } else { "idle" },
        "cycle_running_seconds": u.running_secs,
        "last_cycle_age_seconds": u.last_cycle_age_secs,
        "cycles_finished": u.cycles_finished,
        "stall_after_seconds": u.stall_after_secs,
    });
    if u.stalled {
        v["reason"] = json!(format!(
            "the upload cycle has been running for {} s, longer than {} s: the destination may hang",
            u.running_secs.unwrap_or(0),
            u.stall_after_secs
        ));
    }
    v
}

fn id_segment(path: &str, index: usize) -> std::result::Result<i64, Failure> {
    let seg = path.split('/').nth(index).unwrap_or("");
    seg.parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| bad(format!("backup id '{seg}' is not a positive whole number")))
}

/// The next page's target for the `Link` header: the same filters, the
/// cursor after the last row of this page.
fn next_page(limit: u32, last_id: i64, filters: &Filters) -> String {
    let mut link = format!("/backups?limit={limit}&cursor={last_id}");
    for (name, value) in [
        ("status", filters.status.map(StatusFilter::as_str)),
        ("filename", filters.filename.as_deref()),
        ("date_from", filters.date_from.as_deref()),
        ("date_to", filters.date_to.as_deref()),
    ] {
        if let Some(v) = value {
            link.push_str(&format!("&{name}={}", query::encode(v)));
        }
    }
    link
}

/// `/backups`: rows matching the filters, newest first, a page at a time.
fn list(params: &[(String, String)], db: &Reader) -> std::result::Result<Answer, Failure> {
    only_params(
        params,
        &[
            "status",
            "filename",
            "date_from",
            "date_to",
            "limit",
            "cursor",
        ],
    )?;
    let limit = number_param(params, "limit", 100, MAX_LIMIT)?;
    let before_id = match param(params, "cursor") {
        None => None,
        Some(v) => Some(v.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| {
            bad(format!(
                "cursor '{v}' is not valid: use the value from the previous page's Link header"
            ))
        })?),
    };
    let filters = Filters {
        status: status_param(params)?,
        filename: param(params, "filename")
            .filter(|s| !s.is_empty())
            .map(str::to_string),
        date_from: date_param(params, "date_from")?,
        date_to: date_param(params, "date_to")?,
        before_id,
    };
    let (rows, last_id) = db.list(&filters, limit)?;
    let next = last_id.map(|last_id| next_page(limit, last_id, &filters));
    let mut answer = json_text(200, rows);
    if let Some(link) = next {
        answer = answer.with_header(header("Link", &format!("<{link}>; rel=\"next\"")));
    }
    Ok(answer)
}

fn presign(
    path: &str,
    params: &[(String, String)],
    cfg: &ServeConfig,
    db: &Reader,
) -> std::result::Result<Answer, Failure> {
    let Some(p) = &cfg.presign else {
        return Err(Failure::Client(
            404,
            "presigned links are disabled: start the server with --presign".into(),
        ));
    };
    only_params(params, &["expires"])?;
    let id = id_segment(path, 2)?;
    let expires = match param(params, "expires") {
        None => 900.min(p.max_expires),
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|n| (1..=p.max_expires).contains(n))
            .ok_or_else(|| {
                bad(format!(
                    "expires '{v}' must be seconds from 1 to {}",
                    p.max_expires
                ))
            })?,
    };
    let Some((key, status)) = db.key_of(id)? else {
        return Err(Failure::Client(404, format!("no backup with id {id}")));
    };
    if !matches!(
        status.as_deref().and_then(Status::from_column),
        Some(Status::Uploaded | Status::SkippedExists | Status::FailedGzip)
    ) {
        return Err(Failure::Client(
            404,
            format!(
                "backup {id} has no stored object (status {})",
                status.unwrap_or_default()
            ),
        ));
    }
    let url = p
        .store
        .presign_get(&key, expires)
        .map_err(|e| Failure::Client(500, format!("cannot presign: {e}")))?;
    Ok(json_answer(
        200,
        &json!({"id": id, "url": url, "expires_in": expires}),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_dates() {
        let route_name = |path| Route::parse(path).name();
        assert_eq!(route_name("/backups"), "backups");
        assert_eq!(route_name("/backups/"), "backups");
        assert_eq!(route_name("/backups/last"), "backups_last");
        assert_eq!(route_name("/backups/12"), "backup");
        assert_eq!(route_name("/backups/12/presign"), "presign");
        assert_eq!(route_name("/nope"), "other");
        assert!(crate::timefmt::is_date("2026-11-22"));
        assert!(!crate::timefmt::is_date("2026-1-22"));
        assert!(!crate::timefmt::is_date("22/11/2026"));
    }

    /// Every route is counted under its own label: the names are the
    /// request counters' list, in its order.
    #[test]
    fn route_names_are_the_counters_labels() {
        let all = [
            Route::Health,
            Route::Backups,
            Route::BackupsLast,
            Route::Backup,
            Route::Presign,
            Route::Stats,
            Route::VerificationsLast,
            Route::Search,
            Route::Events,
            Route::Overview,
            Route::Ui,
            Route::Upload,
            Route::Metrics,
            Route::Other,
        ];
        let names: Vec<&str> = all.iter().map(|r| r.name()).collect();
        assert_eq!(names, metrics::ROUTES);
    }
}
