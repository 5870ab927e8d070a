//! Authentication and authorization at the edge.
//!
//! Every route has an entry in [`access_table`]: public, or the
//! [`Action`] it takes and on what ([`Scope`]). One middleware, layered on
//! every route, looks the matched route up, authenticates the request (a
//! `Bearer` key, or the console's session cookie with its CSRF checks),
//! and asks [`ignis_auth::authorize`]. A route missing from the table is
//! refused with a 500 (and a test fails). Handlers get the [`Principal`]
//! as a request extension and never look at roles.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use ignis_auth::{authorize, Action, AuthError, Decision, Principal, Resource};
use ignis_core::{ErrorKind, IgnisError, DEFAULT_NAMESPACE};
use subtle::ConstantTimeEq;

use crate::{ApiError, SharedState};

/// The console's session cookie over HTTPS (`__Host-`: Secure, Path=/, no
/// Domain) and over plain HTTP.
pub const COOKIE_TLS: &str = "__Host-ignis_session";
pub const COOKIE_PLAIN: &str = "ignis_session";
/// The header a cookie-authenticated unsafe request must carry.
pub const CSRF_HEADER: &str = "x-ignis-csrf";

/// Which namespace an action is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// The `{namespace}` path parameter, or `default` on the un-prefixed
    /// paths (`/api/v1/functions/...`).
    PathNamespace,
    /// As [`Scope::PathNamespace`], but a listing with
    /// `all_namespaces=true` spans every namespace the key sees.
    PathNamespaceOrAll,
    /// A view across namespaces, filtered to the caller's.
    Visible,
    /// The whole server: keys for every namespace only.
    System,
}

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials (health, the OpenAPI document, the login itself, the
    /// console's assets).
    Public,
    /// Credentials whose principal may take the action on the scope.
    Requires(Action, Scope),
    /// HTTP triggers: the handler decides from the function's `http_auth`
    /// (and authenticates for private routes).
    Trigger,
    /// Prometheus: `Requires(ReadMetrics, System)`, or public with
    /// `metrics_public = true`.
    Metrics,
}

/// One route and what it requires.
#[derive(Debug, Clone)]
pub struct RouteAccess {
    pub method: Method,
    /// The route's path template, as axum matches it.
    pub path: String,
    pub access: Access,
}

/// Function routes, relative to `/api/v1` and to
/// `/api/v1/namespaces/{namespace}`.
const FUNCTION_ROUTES: &[(&str, &str, Action, Scope)] = &[
    (
        "GET",
        "/functions",
        Action::ReadFunctions,
        Scope::PathNamespaceOrAll,
    ),
    (
        "POST",
        "/functions",
        Action::WriteFunctions,
        Scope::PathNamespace,
    ),
    (
        "GET",
        "/functions/{name}",
        Action::ReadFunctions,
        Scope::PathNamespace,
    ),
    (
        "PUT",
        "/functions/{name}",
        Action::WriteFunctions,
        Scope::PathNamespace,
    ),
    (
        "DELETE",
        "/functions/{name}",
        Action::WriteFunctions,
        Scope::PathNamespace,
    ),
    (
        "GET",
        "/functions/{name}/code",
        Action::ReadFunctions,
        Scope::PathNamespace,
    ),
    (
        "POST",
        "/functions/{name}/warm",
        Action::WriteFunctions,
        Scope::PathNamespace,
    ),
    (
        "GET",
        "/functions/{name}/invocations",
        Action::ReadLogs,
        Scope::PathNamespace,
    ),
    (
        "POST",
        "/functions/{name}/invoke",
        Action::Invoke,
        Scope::PathNamespace,
    ),
    (
        "GET",
        "/functions/{name}/metrics",
        Action::ReadMetrics,
        Scope::PathNamespace,
    ),
    (
        "GET",
        "/functions/{name}/invocations/{id}",
        Action::ReadLogs,
        Scope::PathNamespace,
    ),
    (
        "GET",
        "/functions/{name}/dead-letters",
        Action::ReadLogs,
        Scope::PathNamespace,
    ),
    (
        "POST",
        "/functions/{name}/dead-letters/{id}/retry",
        Action::Invoke,
        Scope::PathNamespace,
    ),
    (
        "DELETE",
        "/functions/{name}/dead-letters/{id}",
        Action::WriteFunctions,
        Scope::PathNamespace,
    ),
    (
        "GET",
        "/functions/{name}/files",
        Action::ReadFunctions,
        Scope::PathNamespace,
    ),
    (
        "GET",
        "/functions/{name}/versions",
        Action::ReadFunctions,
        Scope::PathNamespace,
    ),
    (
        "GET",
        "/functions/{name}/sandboxes",
        Action::ReadFunctions,
        Scope::PathNamespace,
    ),
    (
        "POST",
        "/functions/{name}/versions",
        Action::WriteFunctions,
        Scope::PathNamespace,
    ),
    (
        "DELETE",
        "/functions/{name}/versions/{version}",
        Action::WriteFunctions,
        Scope::PathNamespace,
    ),
    (
        "GET",
        "/functions/{name}/aliases",
        Action::ReadFunctions,
        Scope::PathNamespace,
    ),
    (
        "POST",
        "/functions/{name}/aliases",
        Action::WriteFunctions,
        Scope::PathNamespace,
    ),
    (
        "GET",
        "/functions/{name}/aliases/{alias}",
        Action::ReadFunctions,
        Scope::PathNamespace,
    ),
    (
        "PUT",
        "/functions/{name}/aliases/{alias}",
        Action::WriteFunctions,
        Scope::PathNamespace,
    ),
    (
        "DELETE",
        "/functions/{name}/aliases/{alias}",
        Action::WriteFunctions,
        Scope::PathNamespace,
    ),
    (
        "GET",
        "/functions/{name}/test-events",
        Action::ReadFunctions,
        Scope::PathNamespace,
    ),
    (
        "PUT",
        "/functions/{name}/test-events/{event}",
        Action::WriteFunctions,
        Scope::PathNamespace,
    ),
    (
        "DELETE",
        "/functions/{name}/test-events/{event}",
        Action::WriteFunctions,
        Scope::PathNamespace,
    ),
];

/// Every route of the application and what it requires.
pub fn access_table() -> Vec<RouteAccess> {
    let entry = |method: &str, path: &str, access: Access| RouteAccess {
        method: method.parse().unwrap_or(Method::GET),
        path: path.to_string(),
        access,
    };
    use Access::{Public, Requires};
    let mut t = vec![
        entry("GET", "/api/v1/health", Public),
        entry("GET", "/api/v1/openapi.json", Public),
        entry("POST", "/api/v1/session", Public),
        entry(
            "GET",
            "/api/v1/session",
            Requires(Action::Session, Scope::Visible),
        ),
        entry(
            "DELETE",
            "/api/v1/session",
            Requires(Action::Session, Scope::Visible),
        ),
        entry(
            "GET",
            "/api/v1/whoami",
            Requires(Action::Session, Scope::Visible),
        ),
        entry(
            "GET",
            "/api/v1/keys",
            Requires(Action::ManageKeys, Scope::System),
        ),
        entry(
            "POST",
            "/api/v1/keys",
            Requires(Action::ManageKeys, Scope::System),
        ),
        entry(
            "DELETE",
            "/api/v1/keys/{id}",
            Requires(Action::ManageKeys, Scope::System),
        ),
        // Admin keys, or the key itself (checked by the handlers).
        entry(
            "POST",
            "/api/v1/keys/{id}/aws-credentials",
            Requires(Action::Session, Scope::Visible),
        ),
        entry(
            "GET",
            "/api/v1/keys/{id}/aws-credentials",
            Requires(Action::Session, Scope::Visible),
        ),
        entry(
            "DELETE",
            "/api/v1/keys/{id}/aws-credentials/{access_key_id}",
            Requires(Action::Session, Scope::Visible),
        ),
        entry(
            "GET",
            "/api/v1/invocations/{id}",
            Requires(Action::ReadLogs, Scope::Visible),
        ),
        entry(
            "GET",
            "/api/v1/audit",
            Requires(Action::ReadAudit, Scope::System),
        ),
        entry(
            "GET",
            "/api/v1/namespaces",
            Requires(Action::ReadNamespaces, Scope::Visible),
        ),
        entry(
            "POST",
            "/api/v1/namespaces",
            Requires(Action::ManageNamespaces, Scope::System),
        ),
        entry(
            "DELETE",
            "/api/v1/namespaces/{namespace}",
            Requires(Action::ManageNamespaces, Scope::System),
        ),
        entry(
            "GET",
            "/api/v1/pools",
            Requires(Action::ReadSystem, Scope::Visible),
        ),
        entry(
            "GET",
            "/api/v1/metrics/summary",
            Requires(Action::ReadMetrics, Scope::Visible),
        ),
        entry(
            "GET",
            "/api/v1/metrics/stream",
            Requires(Action::ReadMetrics, Scope::Visible),
        ),
        entry(
            "GET",
            "/api/v1/metrics/series",
            Requires(Action::ReadMetrics, Scope::System),
        ),
        entry(
            "GET",
            "/api/v1/metrics/errors",
            Requires(Action::ReadMetrics, Scope::Visible),
        ),
        entry(
            "GET",
            "/api/v1/metrics/backends",
            Requires(Action::ReadMetrics, Scope::Visible),
        ),
        entry("GET", "/metrics", Access::Metrics),
    ];
    for prefix in ["/api/v1", "/api/v1/namespaces/{namespace}"] {
        for (method, path, action, scope) in FUNCTION_ROUTES {
            t.push(entry(
                method,
                &format!("{prefix}{path}"),
                Requires(*action, *scope),
            ));
        }
    }
    for method in ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"] {
        t.push(entry(method, "/fn/{*path}", Access::Trigger));
    }
    t
}

/// The access of a matched route.
fn access_of(table: &[RouteAccess], method: &Method, path: &str) -> Option<Access> {
    // HEAD is routed like GET.
    let method = if method == Method::HEAD && !path.starts_with("/fn/") {
        &Method::GET
    } else {
        method
    };
    table
        .iter()
        .find(|r| r.path == path && r.method == method)
        .map(|r| r.access)
}

/// The client's address, where the server knows it.
pub fn client_ip(req: &Request) -> Option<IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// The value of cookie `name`, if sent.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            let (k, v) = c.trim().split_once('=')?;
            (k == name).then_some(v)
        })
}

/// The session cookie, whichever of the two names it has.
pub fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    cookie(headers, COOKIE_TLS).or_else(|| cookie(headers, COOKIE_PLAIN))
}

/// The `Bearer` credential, if one was sent.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The checks a cookie-authenticated unsafe request must pass: the
/// session's token in `X-Ignis-Csrf`, and no sign of another site (the
/// `Origin` is this host; `Sec-Fetch-Site` is same-origin).
fn csrf_ok(headers: &HeaderMap, csrf: &str) -> bool {
    let token_ok = headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| bool::from(t.as_bytes().ct_eq(csrf.as_bytes())));
    if !token_ok {
        return false;
    }
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        if !matches!(site, "same-origin" | "none") {
            return false;
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        let host = headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let origin_host = origin.split_once("://").map_or("", |(_, h)| h);
        if origin_host != host {
            return false;
        }
    }
    true
}

/// How a request authenticated, for the handlers.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub principal: Principal,
    /// The session's CSRF token, when it came with the session cookie.
    pub csrf: Option<String>,
}

/// Authenticates the request's credentials: `Ok(None)` when it has none.
pub fn authenticate(state: &SharedState, req: &Request) -> Result<Option<Authenticated>, ApiError> {
    let auth = &state.auth;
    if !auth.enabled() {
        return Ok(Some(Authenticated {
            principal: Principal::auth_disabled(),
            csrf: None,
        }));
    }
    let headers = req.headers();
    let ip = client_ip(req);
    let presented_key = bearer(headers);
    let cookie = session_cookie(headers);
    if presented_key.is_none() && cookie.is_none() {
        return Ok(None);
    }
    auth.check_rate(ip).map_err(auth_error)?;
    let result = match presented_key {
        Some(k) => auth.authenticate_key(k).map(|principal| Authenticated {
            principal,
            csrf: None,
        }),
        None => {
            let cookie = cookie.unwrap_or_default();
            auth.authenticate_session(cookie)
                .map(|(principal, csrf)| Authenticated {
                    principal,
                    csrf: Some(csrf),
                })
        }
    };
    match result {
        Ok(a) => {
            if let Some(csrf) = &a.csrf {
                if is_unsafe(req.method()) && !csrf_ok(headers, csrf) {
                    return Err(ApiError(IgnisError::new(
                        ErrorKind::Forbidden,
                        "a cookie-authenticated request that changes something needs the \
                         session's X-Ignis-Csrf token and must come from this origin",
                    )));
                }
            }
            Ok(Some(a))
        }
        Err(e) => {
            if e.is_unauthenticated() {
                auth.failed(ip);
                // Why exactly (unknown, revoked, expired) stays here.
                tracing::debug!(reason = %e, "authentication failed");
            }
            Err(auth_error(e))
        }
    }
}

/// What the caller learns of an authentication failure: never whether a
/// key exists.
pub fn auth_error(e: AuthError) -> ApiError {
    match e {
        AuthError::RateLimited { retry_after_s } => ApiError(IgnisError {
            retry_after_s: Some(retry_after_s),
            ..IgnisError::new(
                ErrorKind::Throttled,
                "too many failed authentications from this address; wait and retry",
            )
        }),
        e if e.is_unauthenticated() => unauthorized(),
        AuthError::Invalid(m) => ApiError::invalid(m),
        AuthError::LastAdmin => ApiError(IgnisError::new(ErrorKind::Conflict, e.to_string())),
        AuthError::NoSuchKey => ApiError::not_found("no such key"),
        AuthError::NoSuchCredential => ApiError::not_found("no such AWS access key id"),
        AuthError::Store(e) => e.into(),
        other => ApiError(IgnisError::internal(other.to_string())),
    }
}

pub fn unauthorized() -> ApiError {
    ApiError(IgnisError::new(
        ErrorKind::Unauthorized,
        "missing or invalid credentials: send `Authorization: Bearer <key>`",
    ))
}

fn forbidden(reason: &str) -> ApiError {
    ApiError(IgnisError::new(ErrorKind::Forbidden, reason))
}

/// The `{namespace}` segment of `uri_path` where the route's `template`
/// has one, else the default namespace.
fn path_namespace(template: &str, uri_path: &str) -> String {
    let at = template.split('/').position(|s| s == "{namespace}");
    at.and_then(|i| uri_path.split('/').nth(i))
        .map(|s| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        })
        .unwrap_or_else(|| DEFAULT_NAMESPACE.to_string())
}

/// When the authentication middleware let a request through (with
/// `--stage-timings` only): the start of the handler's stage.
#[derive(Debug, Clone, Copy)]
pub struct StageMark(pub std::time::Instant);

/// The middleware on every route.
pub async fn middleware(
    State(state): State<SharedState>,
    mut req: Request,
    next: Next,
) -> Response {
    let stages = &state.engine.metrics().stages;
    let began = stages.start();
    let path = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_string())
        .unwrap_or_default();
    let path = path.as_str();
    let access = access_of(&state.access, req.method(), path);
    let access = match access {
        Some(Access::Metrics) if state.config.metrics_public => Access::Public,
        Some(Access::Metrics) => Access::Requires(Action::ReadMetrics, Scope::System),
        Some(a) => a,
        // A method the route does not take (TRACE on a trigger, say).
        None if state.access.iter().any(|r| r.path == path) => {
            let allowed: Vec<Method> = state
                .access
                .iter()
                .filter(|r| r.path == path)
                .map(|r| r.method.clone())
                .collect();
            return crate::handlers::method_not_allowed_of(req.method(), req.uri(), &allowed);
        }
        None => {
            tracing::error!(method = %req.method(), path, "route without an authorization decision");
            return ApiError(IgnisError::internal(format!(
                "no authorization decision for {} {path}",
                req.method()
            )))
            .into_response();
        }
    };
    let mark = |req: &mut Request| {
        if let Some(now) = stages.end(ignis_metrics::Stage::Authorize, began) {
            req.extensions_mut().insert(StageMark(now));
        }
    };
    let (action, scope) = match access {
        Access::Public => return next.run(req).await,
        // The handler authenticates, for private routes only: a public
        // route never looks at credentials (the function may use
        // `Authorization` or cookies of its own).
        Access::Trigger => {
            mark(&mut req);
            return next.run(req).await;
        }
        Access::Metrics => return unauthorized().into_response(),
        Access::Requires(action, scope) => (action, scope),
    };
    let authenticated = match authenticate(&state, &req) {
        Ok(Some(a)) => a,
        Ok(None) => return unauthorized().into_response(),
        Err(e) => return e.into_response(),
    };
    let ns = path_namespace(path, req.uri().path());
    let all = scope == Scope::PathNamespaceOrAll
        && req
            .uri()
            .query()
            .is_some_and(|q| q.split('&').any(|p| p == "all_namespaces=true"));
    let resource = match scope {
        Scope::PathNamespace | Scope::PathNamespaceOrAll if !all => Resource::Namespace(&ns),
        Scope::PathNamespace | Scope::PathNamespaceOrAll | Scope::Visible => Resource::Visible,
        Scope::System => Resource::System,
    };
    match authorize(&authenticated.principal, action, resource) {
        Decision::Allow => {}
        Decision::Deny(reason) => return forbidden(reason).into_response(),
    }
    req.extensions_mut().insert(authenticated);
    mark(&mut req);
    next.run(req).await
}

/// A `Set-Cookie` value for a new session (or, with `max_age_s` 0, the end
/// of one).
pub fn session_cookie_header(value: &str, max_age_s: i64, tls: bool) -> Option<HeaderValue> {
    let (name, secure) = if tls {
        (COOKIE_TLS, "; Secure")
    } else {
        (COOKIE_PLAIN, "")
    };
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}"
    ))
    .ok()
}

/// Whether the request reached us over TLS (directly or through a proxy
/// that says so).
pub fn is_tls(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csrf_needs_the_token_and_this_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("ignis.local:8080"));
        assert!(!csrf_ok(&h, "tok"), "no header");
        h.insert(CSRF_HEADER, HeaderValue::from_static("bad"));
        assert!(!csrf_ok(&h, "tok"), "wrong header");
        h.insert(CSRF_HEADER, HeaderValue::from_static("tok"));
        assert!(csrf_ok(&h, "tok"));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!csrf_ok(&h, "tok"), "foreign origin");
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://ignis.local:8080"),
        );
        assert!(csrf_ok(&h, "tok"));
        h.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(!csrf_ok(&h, "tok"), "cross-site fetch");
    }

    #[test]
    fn the_namespace_comes_from_the_path() {
        assert_eq!(
            path_namespace(
                "/api/v1/namespaces/{namespace}/functions/{name}",
                "/api/v1/namespaces/team-a/functions/f"
            ),
            "team-a"
        );
        assert_eq!(
            path_namespace("/api/v1/functions/{name}", "/api/v1/functions/f"),
            "default"
        );
    }

    #[test]
    fn cookies_and_bearer() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ignis_session=xyz; b=2"),
        );
        h.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("bearer  ign_abc "),
        );
        assert_eq!(session_cookie(&h), Some("xyz"));
        assert_eq!(bearer(&h), Some("ign_abc"));
    }
}
