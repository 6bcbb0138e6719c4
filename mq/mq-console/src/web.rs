//! What every page shares: the application state, the router, the
//! middleware, the per-request context, checked forms and the error type.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::header::{self, HeaderValue};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::Router;
use mq_protocol::name::{GroupName, TopicName};
use tokio::sync::Semaphore;

use crate::audit::{self, AuditLog};
use crate::cluster::ClusterClients;
use crate::config::{ConfigError, ConsoleConfig};
use crate::i18n::{Lang, Texts};
use crate::pages;
use crate::session::{self, Flash, Identity, Sessions, Viewer};
use crate::shop::ShopClient;

/// Largest form body: a test message's body plus the other fields.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// A request not answered by then gets 503 (a broker that hangs).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Requests served at once; more are answered 503 at once.
const MAX_IN_FLIGHT: usize = 64;
/// Longest single-line field (names, keys, tags, times).
pub const MAX_FIELD: usize = 1024;

/// The state every handler sees. Cheap to clone.
#[derive(Clone)]
pub struct App {
    pub config: Arc<ConsoleConfig>,
    pub sessions: Sessions,
    pub cluster: Arc<ClusterClients>,
    /// The shop's operator API (the shop pages).
    pub shop: Arc<ShopClient>,
    /// Who changed what.
    pub audit: Arc<AuditLog>,
    /// The dashboard's time series, filled by the sampler.
    pub series: Arc<crate::series::Store>,
    in_flight: Arc<Semaphore>,
}

impl App {
    /// Fails when the audit log cannot be opened under the data folder.
    pub fn new(config: ConsoleConfig) -> Result<App, ConfigError> {
        let audit =
            AuditLog::open(config.data_dir.as_deref()).map_err(|source| ConfigError::Read {
                path: config
                    .data_dir
                    .clone()
                    .unwrap_or_default()
                    .join(audit::AUDIT_FILE),
                source,
            })?;
        Ok(App {
            sessions: Sessions::new(config.session_timeout),
            cluster: Arc::new(ClusterClients::new(
                config.namesrv_addrs.clone(),
                config.credentials.clone(),
            )),
            shop: Arc::new(ShopClient::new(config.shop.clone())),
            audit: Arc::new(audit),
            series: Arc::default(),
            config: Arc::new(config),
            in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
        })
    }
}

pub fn router(app: App) -> Router {
    Router::new()
        .route("/", get(pages::cluster::overview))
        .route("/login", get(pages::login::form).post(pages::login::submit))
        .route("/logout", post(pages::login::logout))
        .route("/dashboard", get(pages::dashboard::dashboard))
        .route("/namesrv", post(pages::cluster::select_namesrv))
        .route("/broker", get(pages::cluster::broker))
        .route("/broker/config", post(pages::cluster::update_config))
        .route(
            "/topics",
            get(pages::topics::list).post(pages::topics::upsert),
        )
        .route("/topic", get(pages::topics::detail))
        .route("/topic/delete", post(pages::topics::delete))
        .route("/topic/send", post(pages::topics::send))
        .route("/topic/reset", post(pages::topics::reset_offset))
        .route(
            "/consumers",
            get(pages::consumers::list).post(pages::consumers::upsert),
        )
        .route("/consumer", get(pages::consumers::detail))
        .route("/consumer/delete", post(pages::consumers::delete))
        .route("/consumer/reset", post(pages::consumers::reset_offset))
        .route("/producers", get(pages::producers::connections))
        .route("/messages", get(pages::messages::search))
        .route("/message", get(pages::messages::detail))
        .route("/message/resend", post(pages::messages::resend))
        .route("/dlq", get(pages::dlq::dlq))
        .route("/dlq/resend", post(pages::dlq::resend))
        .route("/dlq/export", get(pages::dlq::export))
        .route("/transactions", get(pages::transactions::transactions))
        .route("/orders", get(pages::orders::list))
        .route("/order", get(pages::orders::detail))
        .route("/invariants", get(pages::invariants::invariants))
        .route("/audit", get(pages::audit::audit))
        .route("/static/console.css", get(crate::layout::css))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(app.clone(), audit_layer))
        .layer(middleware::from_fn_with_state(app.clone(), session_layer))
        .layer(middleware::from_fn(timeout_layer))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(app.clone(), limit_layer))
        .layer(middleware::from_fn(security_headers))
        .with_state(app)
}

async fn not_found() -> ConsoleError {
    ConsoleError::NotFound("no such page".into())
}

/// Answers 503 at once when [`MAX_IN_FLIGHT`] requests are being served.
async fn limit_layer(State(app): State<App>, request: Request, next: Next) -> Response {
    match app.in_flight.clone().try_acquire_owned() {
        Ok(_permit) => next.run(request).await,
        Err(_) => {
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, "busy, try again").into_response();
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}

async fn timeout_layer(request: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(request)).await {
        Ok(response) => response,
        Err(_) => ConsoleError::Timeout.into_response(),
    }
}

/// No framing, no sniffing, no scripts or styles but ours, no referrer
/// leaving the console.
async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (
            "content-security-policy",
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("referrer-policy", "same-origin"),
        ("cache-control", "no-store"),
    ] {
        headers
            .entry(name)
            .or_insert(HeaderValue::from_static(value));
    }
    response
}

/// Forms that change nothing but the operator's own session.
fn is_session_form(path: &str) -> bool {
    matches!(path, "/login" | "/logout" | "/namesrv")
}

/// Records every form that may change the cluster or the shop in the
/// audit log, after its handler ran, with what the operator was told.
async fn audit_layer(State(app): State<App>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    if request.method() != Method::POST || is_session_form(&path) {
        return next.run(request).await;
    }
    let viewer = request.extensions().get::<Viewer>().cloned();
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY_BYTES).await else {
        return ConsoleError::TooLarge.into_response();
    };
    let fields = form_pairs(std::str::from_utf8(&bytes).unwrap_or(""));
    let response = next
        .run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await;
    let (ok, outcome) = match &viewer {
        Some(v) if response.status().is_redirection() => app
            .sessions
            .peek_flash(&v.id)
            .map_or((true, String::new()), |f| (f.ok, f.text)),
        _ => (false, format!("refused ({})", response.status().as_u16())),
    };
    app.audit.record(audit::Entry {
        at: crate::time::now_millis(),
        who: viewer
            .as_ref()
            .and_then(|v| v.user_name())
            .unwrap_or("(no log-in)")
            .to_owned(),
        action: path,
        target: audit::target_of(&fields),
        ok,
        outcome,
    });
    response
}

/// Paths anyone may open without logging in.
fn is_public(path: &str) -> bool {
    path == "/login" || path.starts_with("/static/")
}

/// Finds (or starts) the request's session and puts its [`Viewer`] in the
/// request; sends to the log-in page when a log-in is required and missing.
async fn session_layer(State(app): State<App>, mut request: Request, next: Next) -> Response {
    let known = request
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|c| session::cookie_value(c, session::COOKIE))
        .and_then(|id| app.sessions.touch(id));
    let (viewer, fresh) = match known {
        Some(viewer) => (viewer, false),
        None => {
            let identity = if app.config.login_required {
                Identity::Anonymous
            } else {
                Identity::Open
            };
            (app.sessions.create(identity), true)
        }
    };
    let lang_query = query_lang(request.uri().query());
    let mut response = if app.config.login_required
        && !viewer.is_logged_in()
        && !is_public(request.uri().path())
    {
        Redirect::to("/login").into_response()
    } else {
        request.extensions_mut().insert(viewer.clone());
        next.run(request).await
    };
    let headers = response.headers_mut();
    let cookie_set = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(session::COOKIE.as_bytes()));
    if fresh && !cookie_set {
        if let Ok(v) = HeaderValue::from_str(&session::cookie(&viewer.id)) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    if let Some(lang) = lang_query {
        let cookie = format!(
            "lang={}; Path=/; SameSite=Strict; Max-Age=31536000",
            lang.code()
        );
        if let Ok(v) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, v);
        }
    }
    response
}

fn query_lang(query: Option<&str>) -> Option<Lang> {
    form_pairs(query.unwrap_or(""))
        .into_iter()
        .find(|(k, _)| k == "lang")
        .and_then(|(_, v)| Lang::parse(&v))
}

/// `application/x-www-form-urlencoded` pairs.
fn form_pairs(text: &str) -> Vec<(String, String)> {
    text.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(k), decode_component(v))
        })
        .collect()
}

/// Percent-decoding with `+` as a space; bad escapes are kept as they are.
fn decode_component(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match (hex_value(bytes[i + 1]), hex_value(bytes[i + 2])) {
                    (Some(h), Some(l)) => {
                        out.push(h * 16 + l);
                        i += 2;
                    }
                    _ => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_value(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// Percent-encodes a query component (everything but unreserved characters).
pub fn enc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// What a page needs to know about its request.
pub struct Ctx {
    pub app: App,
    pub viewer: Viewer,
    pub lang: Lang,
    pub t: &'static Texts,
    /// The request's path and query without `lang`, for the language links.
    pub path: String,
    pub query: Fields,
}

impl FromRequestParts<App> for Ctx {
    type Rejection = ConsoleError;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Ctx, ConsoleError> {
        let viewer = parts
            .extensions
            .get::<Viewer>()
            .cloned()
            .ok_or(ConsoleError::Internal)?;
        let raw = parts.uri.query().unwrap_or("");
        if raw.len() > MAX_BODY_BYTES {
            return Err(ConsoleError::BadRequest("the query is too long".into()));
        }
        let query = Fields(form_pairs(raw));
        let cookie_lang = parts
            .headers
            .get(header::COOKIE)
            .and_then(|v| v.to_str().ok())
            .and_then(|c| session::cookie_value(c, "lang"))
            .and_then(Lang::parse);
        let browser_lang = parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok())
            .map(Lang::from_accept_language);
        let lang = query_lang(Some(raw))
            .or(cookie_lang)
            .or(browser_lang)
            .unwrap_or(Lang::En);
        let rest: Vec<String> = query
            .0
            .iter()
            .filter(|(k, _)| k != "lang")
            .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
            .collect();
        let path = if rest.is_empty() {
            parts.uri.path().to_owned()
        } else {
            format!("{}?{}", parts.uri.path(), rest.join("&"))
        };
        Ok(Ctx {
            app: app.clone(),
            viewer,
            lang,
            t: lang.texts(),
            path,
            query,
        })
    }
}

impl Ctx {
    /// The name server this session's pages talk to.
    pub fn namesrv(&self) -> &str {
        self.app.cluster.addr(self.viewer.namesrv)
    }

    /// The admin client of this session's name server.
    pub async fn admin(&self) -> Result<mq_client::AdminClient, ConsoleError> {
        Ok(self.app.cluster.admin(self.viewer.namesrv).await?)
    }

    /// The test-message producer of this session's name server.
    pub async fn producer(&self) -> Result<mq_client::Producer, ConsoleError> {
        Ok(self.app.cluster.producer(self.viewer.namesrv).await?)
    }

    /// The reading consumer of this session's name server.
    pub async fn puller(&self) -> Result<mq_client::PullConsumer, ConsoleError> {
        Ok(self.app.cluster.puller(self.viewer.namesrv).await?)
    }
}

/// Form or query fields, read through checked accessors.
#[derive(Debug, Default, Clone)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The field's value, trimmed; empty when absent.
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.trim())
    }

    /// Every value of a repeated field (checkboxes).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.trim())
            .collect()
    }

    /// A one-line field of at most [`MAX_FIELD`] bytes; empty when absent.
    pub fn line(&self, name: &str) -> Result<&str, ConsoleError> {
        let value = self.get(name);
        if value.len() > MAX_FIELD || value.contains(['\n', '\r']) {
            return Err(ConsoleError::BadRequest(format!(
                "{name} must be one line of at most {MAX_FIELD} characters"
            )));
        }
        Ok(value)
    }

    /// A user topic name (RocketMQ's rules and length).
    pub fn topic(&self, name: &str) -> Result<TopicName, ConsoleError> {
        TopicName::parse(self.get(name)).map_err(|e| ConsoleError::BadRequest(e.to_string()))
    }

    /// A topic the cluster may already hold (`%RETRY%`, `%DLQ%` of a long
    /// group): the characters are checked, not the user-topic length.
    pub fn any_topic(&self, name: &str) -> Result<TopicName, ConsoleError> {
        TopicName::parse_internal(self.get(name))
            .map_err(|e| ConsoleError::BadRequest(e.to_string()))
    }

    pub fn group(&self, name: &str) -> Result<GroupName, ConsoleError> {
        GroupName::parse(self.get(name)).map_err(|e| ConsoleError::BadRequest(e.to_string()))
    }

    /// An integer within `range`; `default` when absent.
    pub fn number(
        &self,
        name: &str,
        range: std::ops::RangeInclusive<i64>,
        default: i64,
    ) -> Result<i64, ConsoleError> {
        let raw = self.get(name);
        if raw.is_empty() {
            return Ok(default);
        }
        raw.parse::<i64>()
            .ok()
            .filter(|n| range.contains(n))
            .ok_or_else(|| {
                ConsoleError::BadRequest(format!(
                    "{name} must be a whole number from {} to {}",
                    range.start(),
                    range.end()
                ))
            })
    }

    /// A checkbox: present with any value but `false`.
    pub fn flag(&self, name: &str) -> bool {
        self.0.iter().any(|(k, v)| k == name && v != "false")
    }
}

/// A POST form whose CSRF token matched its session's.
pub struct CheckedForm {
    pub viewer: Viewer,
    pub fields: Fields,
}

impl CheckedForm {
    /// The operator may change the cluster.
    pub fn require_admin(&self) -> Result<(), ConsoleError> {
        if self.viewer.is_admin() {
            Ok(())
        } else {
            Err(ConsoleError::Forbidden)
        }
    }
}

impl FromRequest<App> for CheckedForm {
    type Rejection = ConsoleError;

    async fn from_request(request: Request, app: &App) -> Result<CheckedForm, ConsoleError> {
        if request.method() != Method::POST {
            return Err(ConsoleError::BadRequest("forms are posted".into()));
        }
        let viewer = request
            .extensions()
            .get::<Viewer>()
            .cloned()
            .ok_or(ConsoleError::Internal)?;
        let body = bytes::Bytes::from_request(request, app)
            .await
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ConsoleError::TooLarge
                } else {
                    ConsoleError::BadRequest(e.body_text())
                }
            })?;
        let text = std::str::from_utf8(&body)
            .map_err(|_| ConsoleError::BadRequest("the form is not UTF-8".into()))?;
        let fields = Fields(form_pairs(text));
        if !session::same_secret(fields.get("_csrf"), &viewer.csrf) {
            return Err(ConsoleError::Csrf);
        }
        Ok(CheckedForm { viewer, fields })
    }
}

/// Why a request failed. Rendered as a short page; never shows internals
/// beyond the cluster's own refusal (which the operator needs to see).
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    #[error("{0}")]
    BadRequest(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("this needs an admin account")]
    Forbidden,
    #[error("the form has expired; reload the page and try again")]
    Csrf,
    #[error("the form is larger than {MAX_BODY_BYTES} bytes")]
    TooLarge,
    #[error("the cluster did not answer in time")]
    Timeout,
    #[error("{0}")]
    Cluster(#[from] mq_client::ClientError),
    /// A shop service refused or failed (its own words).
    #[error("{0}")]
    Shop(String),
    #[error("internal error")]
    Internal,
}

impl ConsoleError {
    pub fn status(&self) -> StatusCode {
        match self {
            ConsoleError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ConsoleError::NotFound(_) => StatusCode::NOT_FOUND,
            ConsoleError::Forbidden | ConsoleError::Csrf => StatusCode::FORBIDDEN,
            ConsoleError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ConsoleError::Timeout => StatusCode::SERVICE_UNAVAILABLE,
            ConsoleError::Cluster(_) | ConsoleError::Shop(_) => StatusCode::BAD_GATEWAY,
            ConsoleError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        (self.status(), crate::layout::error_page(&self.to_string())).into_response()
    }
}

/// After a form: leave the outcome for the next page and go to `back`
/// (a path this console built), with 303 so the browser GETs it.
pub fn finish(
    app: &App,
    viewer: &Viewer,
    back: &str,
    outcome: Result<String, ConsoleError>,
) -> Response {
    let flash = match outcome {
        Ok(text) => Flash { ok: true, text },
        // A refused form is answered as the error it is when it cannot be
        // trusted (CSRF) or allowed; other refusals go back to the page.
        Err(e @ (ConsoleError::Csrf | ConsoleError::Forbidden)) => return e.into_response(),
        Err(e) => Flash {
            ok: false,
            text: e.to_string(),
        },
    };
    app.sessions.set_flash(&viewer.id, flash);
    Redirect::to(back).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding_round_trips() {
        let pairs = form_pairs("a=%25RETRY%25g&b=x+y&c=%E4%B8%AD&d=%zz&e");
        assert_eq!(pairs[0], ("a".into(), "%RETRY%g".into()));
        assert_eq!(pairs[1].1, "x y");
        assert_eq!(pairs[2].1, "中");
        assert_eq!(pairs[3].1, "%zz");
        assert_eq!(pairs[4], ("e".into(), String::new()));
        assert_eq!(decode_component(&enc("%RETRY%a|b c&d")), "%RETRY%a|b c&d");
        assert_eq!(decode_component("%4"), "%4");
        assert_eq!(decode_component("%"), "%");
    }

    #[test]
    fn fields_are_checked() {
        let f = Fields(form_pairs("t=..%2Fetc&g=ok&n=70000&m=5&long=a%0Ab"));
        assert!(f.topic("t").is_err());
        assert!(f.group("g").is_ok());
        assert!(f.number("n", 1..=1024, 8).is_err());
        assert_eq!(f.number("m", 1..=1024, 8).unwrap(), 5);
        assert_eq!(f.number("absent", 1..=1024, 8).unwrap(), 8);
        assert!(f.line("long").is_err());
    }
}
