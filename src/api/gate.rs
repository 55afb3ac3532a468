//! What every request passes before its route: a target within bounds, no
//! body, a reading method, a clean query string and, unless public, a valid
//! token; and the worker's read-only connection to answer it on.

use std::path::Path;

use serde_json::json;
use tiny_http::{Method, Request};

use super::routes::Route;
use super::{Answer, MAX_URL, ServeConfig, error, header, json_answer, query};
use crate::inventory::Reader;

/// A request's route, path and query, or the answer refusing it: target
/// too long, a body, a method that writes, a bad query, no valid token.
type Admitted<'r> = (Route, &'r str, Vec<(String, String)>);

pub(super) fn admit<'r>(
    request: &'r Request,
    cfg: &ServeConfig,
) -> std::result::Result<Admitted<'r>, (Route, Answer)> {
    let url = request.url();
    if url.len() > MAX_URL {
        let msg = format!("request target longer than {MAX_URL} bytes");
        return Err((Route::Other, error(414, msg)));
    }
    // A chunked body has no body_length. Left unread, either kind makes
    // tiny_http close the connection after this answer.
    let chunked = request
        .headers()
        .iter()
        .any(|h| h.field.equiv("Transfer-Encoding"));
    if chunked || request.body_length().is_some_and(|n| n > 0) {
        return Err((Route::Other, error(413, "this API takes no request body")));
    }
    let (path, raw_query) = url.split_once('?').unwrap_or((url, ""));
    let route = Route::parse(path);
    if !matches!(request.method(), Method::Get | Method::Head) {
        let msg = format!(
            "method {} not allowed: this API is read-only, use GET",
            request.method()
        );
        let answer = error(405, msg).with_header(header("Allow", "GET, HEAD"));
        return Err((route, answer));
    }
    let params = query_params(raw_query).map_err(|a| (route, a))?;
    authorize(request, cfg, route).map_err(|a| (route, a))?;
    Ok((route, path, params))
}

/// The decoded query; a token in it is refused, since query strings end up
/// in proxy logs and browser history.
fn query_params(raw: &str) -> std::result::Result<Vec<(String, String)>, Answer> {
    let params = query::parse(raw).map_err(|e| error(400, e.to_string()))?;
    let secret = params.iter().find(|(k, _)| {
        matches!(
            k.to_ascii_lowercase().as_str(),
            "token" | "access_token" | "api_key" | "apikey" | "auth"
        )
    });
    match secret {
        Some((k, _)) => Err(error(
            400,
            format!(
                "'{k}' in the query string is refused: send the token as 'Authorization: Bearer <token>'"
            ),
        )),
        None => Ok(params),
    }
}

/// Every route but `/health` (and `/metrics` when made public) needs a
/// valid bearer token.
fn authorize(
    request: &Request,
    cfg: &ServeConfig,
    route: Route,
) -> std::result::Result<(), Answer> {
    if route.is_public(cfg.metrics_public) {
        return Ok(());
    }
    let auth = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))
        .map(|h| h.value.as_str());
    if cfg.tokens.accepts(auth) {
        return Ok(());
    }
    let msg = if auth.is_some() {
        "invalid token"
    } else {
        "missing 'Authorization: Bearer <token>' header"
    };
    Err(error(401, msg).with_header(header("WWW-Authenticate", "Bearer realm=\"fgbackup\"")))
}

/// This worker's read-only connection, opened on first use (the database
/// may appear after the server starts); 503 while it cannot be opened.
pub(super) fn connect<'a>(
    reader: &'a mut Option<Reader>,
    db_path: &Path,
    route: Route,
) -> std::result::Result<&'a Reader, Answer> {
    if reader.is_none() {
        match Reader::open(db_path) {
            Ok(r) => *reader = Some(r),
            Err(e) => {
                log::warn!("{e}");
                return Err(if route == Route::Health {
                    json_answer(503, &json!({"status": "error", "database": e.to_string()}))
                } else {
                    error(503, format!("database unavailable: {e}"))
                });
            }
        }
    }
    reader.as_ref().ok_or_else(|| error(500, "internal error"))
}
