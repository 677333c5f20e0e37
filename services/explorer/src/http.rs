//! The explorer's HTTP surface: pages, the trust files, and `/events` (server-sent events when the
//! stack changes). Everything it serves is compiled in; it makes no request but to the stack.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::model::LogKind;
use crate::pages;
use crate::source::Explorer;

/// How many entries of each log the log page shows.
const PAGE_ENTRIES: u64 = 100;
/// How often the live poller looks at the stack.
const POLL: Duration = Duration::from_millis(500);
/// Pages following `/events` at once; one more is answered 503. Each is one small stream fed by
/// the one shared poller, so this bounds the explorer's memory however many tabs are open.
pub(crate) const MAX_LIVE_CLIENTS: usize = 64;
/// The headers of every answer: no inline code, no framing (clickjacking), no type sniffing, no
/// referrer leaving the stack.
const SECURITY_HEADERS: [(header::HeaderName, &str); 4] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
         form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    ),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
    (header::X_FRAME_OPTIONS, "DENY"),
    (header::REFERRER_POLICY, "no-referrer"),
];

/// The explorer's routes.
pub fn router(explorer: Arc<Explorer>) -> Router {
    Router::new()
        .route("/", get(overview))
        .route("/log", get(log))
        .route("/certificate/{log}/{index}", get(certificate))
        .route("/registry", get(registry))
        .route("/admission", get(admission))
        .route("/search", get(search))
        .route("/events", get(events))
        .route("/trust/{file}", get(trust_file))
        .route("/assets/style.css", get(|| async { ([(header::CONTENT_TYPE, "text/css")], pages::STYLE) }))
        .route("/assets/live.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], pages::LIVE) }))
        .route("/healthz", get(|| async { "ok" }))
        .fallback(|| async { not_found("No such page.") })
        .layer(axum::middleware::map_response(with_security_headers))
        .with_state(explorer)
}

async fn with_security_headers(mut response: Response) -> Response {
    for (name, value) in SECURITY_HEADERS {
        response.headers_mut().insert(name, header::HeaderValue::from_static(value));
    }
    response
}

fn not_found(message: &str) -> Response {
    let page = pages::layout(
        "Not found",
        "",
        maud::html! { h1 { "Not found" } p { (message) } a href="/" { "Back to the overview" } },
    );
    (StatusCode::NOT_FOUND, Html(page.into_string())).into_response()
}

/// The trust files a client downloads (the directory's plain files, names only).
fn trust_files(explorer: &Explorer) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(&explorer.config.trust_dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .collect();
    names.sort();
    names
}

async fn overview(State(explorer): State<Arc<Explorer>>) -> Html<String> {
    let health = explorer.health().await;
    let env: Vec<(String, String)> = explorer.config.env.clone();
    Html(pages::overview(&health, &trust_files(&explorer), &explorer.config.identity, &env).into_string())
}

async fn log(State(explorer): State<Arc<Explorer>>) -> Html<String> {
    let page = match explorer.trust() {
        Err(why) => pages::layout("Log", "Log", maud::html! { p.bad { (why) } }),
        Ok(trust) => {
            let v1 = match explorer.url("rekor") {
                Some(_) => Some(explorer.v1_entries(&trust, PAGE_ENTRIES).await),
                None => None,
            };
            let v2 = match explorer.url("rekor-v2") {
                Some(_) => Some(explorer.v2_entries(&trust, PAGE_ENTRIES).await),
                None => None,
            };
            pages::log(v1, v2, &explorer.seen_heads())
        }
    };
    Html(page.into_string())
}

async fn certificate(State(explorer): State<Arc<Explorer>>, Path((log, index)): Path<(String, String)>) -> Response {
    let log = match log.as_str() {
        "v1" => LogKind::V1,
        "v2" => LogKind::V2,
        _ => return not_found("The log is v1 or v2."),
    };
    let Ok(index) = index.parse::<u64>() else { return not_found("A log index is a number.") };
    let trust = match explorer.trust() {
        Ok(trust) => trust,
        Err(why) => return not_found(&why),
    };
    match explorer.entry(&trust, log, index).await {
        Ok(entry) => Html(pages::certificate(&entry).into_string()).into_response(),
        Err(why) => not_found(&why),
    }
}

async fn registry(State(explorer): State<Arc<Explorer>>) -> Html<String> {
    let images = match explorer.trust() {
        Ok(trust) => explorer.images(&trust).await,
        Err(why) => Err(why),
    };
    Html(pages::registry(images).into_string())
}

async fn admission(State(explorer): State<Arc<Explorer>>) -> Html<String> {
    Html(pages::admission(&explorer.decisions(), explorer.probe_card().as_ref()).into_string())
}

#[derive(Deserialize)]
struct SearchQuery {
    #[serde(default)]
    q: String,
}

async fn search(State(explorer): State<Arc<Explorer>>, Query(query): Query<SearchQuery>) -> Html<String> {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    if !query.q.trim().is_empty() {
        match explorer.trust() {
            Err(why) => problems.push(why),
            Ok(trust) => {
                // A digest also goes through the v1 log's own index (attestation subjects).
                let bare = query.q.trim().trim_start_matches("sha256:").to_ascii_lowercase();
                let indexed = if bare.len() == 64
                    && bare.bytes().all(|b| b.is_ascii_hexdigit())
                    && explorer.url("rekor").is_some()
                {
                    explorer.v1_search(&format!("sha256:{bare}")).await.unwrap_or_default()
                } else {
                    Vec::new()
                };
                // Search looks at the newest thousand entries of each log.
                for log in [LogKind::V1, LogKind::V2] {
                    let (service, result) = match log {
                        LogKind::V1 => ("rekor", explorer.url("rekor").map(|_| ())),
                        LogKind::V2 => ("rekor-v2", explorer.url("rekor-v2").map(|_| ())),
                    };
                    if result.is_none() {
                        continue;
                    }
                    let entries = match log {
                        LogKind::V1 => explorer.v1_entries(&trust, 1000).await,
                        LogKind::V2 => explorer.v2_entries(&trust, 1000).await,
                    };
                    match entries {
                        Ok((_, entries)) => found.extend(entries.into_iter().filter(|e| {
                            pages::matches(e, &query.q) || e.uuid.as_ref().is_some_and(|u| indexed.contains(u))
                        })),
                        Err(why) => problems.push(format!("{service}: {why}")),
                    }
                }
            }
        }
    }
    Html(pages::search(&query.q, &found, &problems).into_string())
}

/// One event each time a log grows or a decision is recorded. Every client follows the one shared
/// poller ([`crate::live::Live`]); a client past [`MAX_LIVE_CLIENTS`] is refused.
async fn events(State(explorer): State<Arc<Explorer>>) -> Response {
    let Some(slot) = LiveSlot::take(&explorer) else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("more than {MAX_LIVE_CLIENTS} pages follow this stack live; close some"),
        )
            .into_response();
    };
    let mut changes = explorer.live.subscribe();
    ensure_poller(&explorer);
    // What the client saw when it connected: an event only when something changes after that.
    let seen = *changes.borrow_and_update();
    let stream = futures_util::stream::unfold((changes, seen, slot), |(mut changes, mut seen, slot)| async move {
        loop {
            changes.changed().await.ok()?;
            let now = *changes.borrow_and_update();
            let Some(activity) = now else { continue };
            if seen.replace(activity).is_none_or(|before| before == activity) {
                continue;
            }
            let data = format!("{{\"v1\":{:?},\"v2\":{:?},\"decisions\":{}}}", activity.0, activity.1, activity.2);
            return Some((Ok::<_, Infallible>(Event::default().event("message").data(data)), (changes, seen, slot)));
        }
    });
    Sse::new(stream).keep_alive(KeepAlive::default()).into_response()
}

/// Starts the shared poller unless one runs: it follows the stack while some client listens.
fn ensure_poller(explorer: &Arc<Explorer>) {
    if !explorer.live.claim_poller() {
        return;
    }
    let explorer = explorer.clone();
    tokio::spawn(async move {
        while !explorer.live.poller_may_stop() {
            let now = explorer.activity().await;
            explorer.live.publish(now);
            tokio::time::sleep(POLL).await;
        }
    });
}

/// One of the [`MAX_LIVE_CLIENTS`] places, given back when the client's stream ends.
struct LiveSlot(Arc<Explorer>);

impl LiveSlot {
    fn take(explorer: &Arc<Explorer>) -> Option<LiveSlot> {
        explorer.live.take_client(MAX_LIVE_CLIENTS).then(|| LiveSlot(explorer.clone()))
    }
}

impl Drop for LiveSlot {
    fn drop(&mut self) {
        self.0.live.release_client();
    }
}

async fn trust_file(State(explorer): State<Arc<Explorer>>, Path(file): Path<String>) -> Response {
    // Only a file the directory lists: no path can reach outside it.
    if !trust_files(&explorer).contains(&file) {
        return not_found("No such trust file.");
    }
    match std::fs::read(explorer.config.trust_dir.join(&file)) {
        Ok(bytes) => {
            let kind = if file.ends_with(".json") { "application/json" } else { "text/plain; charset=utf-8" };
            ([(header::CONTENT_TYPE, kind)], bytes).into_response()
        }
        Err(_) => not_found("No such trust file."),
    }
}
