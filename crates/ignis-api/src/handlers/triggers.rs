//! HTTP triggers: any method on `/fn/{route}[/...]` calls the function with
//! an API Gateway HTTP API (v2) proxy event, and a `{statusCode, headers,
//! body, isBase64Encoded}` result becomes the HTTP response.

use std::collections::BTreeMap;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use ignis_auth::{authorize, Action, Decision, Resource};
use ignis_core::{HttpAuth, IgnisError, Trigger};
use ignis_metrics::Stage;
use serde::Serialize;
use serde_json::value::RawValue;
use std::borrow::Cow;

use crate::auth::{authenticate, unauthorized, StageMark};
use crate::extract::body_bytes;
use crate::handlers::invoke::outcome_headers;
use crate::{ApiError, ApiResult, ErrorBody, SharedState};

#[utoipa::path(post, path = "/fn/{route}", tag = "triggers",
    params(("route" = String, Path, description = "The function's route, plus any sub-path; any method")),
    request_body(content = String, description = "Passed to the handler as `body`"),
    responses(
        (status = 200, description = "The handler's `statusCode`/`headers`/`body`, or its return value as JSON"),
        (status = 401, description = "A private route (`http_auth: key`) without valid credentials, or no such route", body = ErrorBody),
        (status = 404, description = "No such route, or one the key may not invoke", body = ErrorBody),
        (status = 502, description = "The function failed", body = ErrorBody),
        (status = 504, description = "Timeout", body = ErrorBody)),
    security((), ("key" = []), ("session" = [])))]
pub async fn trigger(State(state): State<SharedState>, req: Request) -> ApiResult<Response> {
    let mark = req.extensions().get::<StageMark>().map(|m| m.0);
    let path = req
        .uri()
        .path()
        .strip_prefix("/fn")
        .unwrap_or("/")
        .to_string();
    let found = state.registry.route(&path);
    let public = found
        .as_ref()
        .is_some_and(|(f, _)| f.config.http_auth == HttpAuth::None);
    let caller = if public {
        None
    } else {
        authenticate(&state, &req)?
    };
    // Who may call: anyone for a public route; for a private one, a key
    // whose role may invoke the function's namespace. Nobody learns more
    // than they may: without credentials an unknown route and a private
    // one both answer 401; with a key that may not invoke it, both 404.
    let not_found = || ApiError::not_found(format!("no function has the route of {path}"));
    let (function, rest) = match (found, &caller) {
        (Some((f, rest)), _) if f.config.http_auth == HttpAuth::None => (f, rest),
        (_, None) => return Err(unauthorized()),
        (None, Some(_)) => return Err(not_found()),
        (Some((f, rest)), Some(c)) => {
            match authorize(
                &c.principal,
                Action::Invoke,
                Resource::Namespace(&f.namespace),
            ) {
                Decision::Allow => (f, rest),
                Decision::Deny(_) => return Err(not_found()),
            }
        }
    };
    let method = req.method().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let mut headers = req.headers().clone();
    // ignis's own credentials are not the function's business: a private
    // route's `Authorization` (the caller's key), the console's session
    // cookie and CSRF token never reach user code.
    if function.config.http_auth == HttpAuth::Key {
        headers.remove(header::AUTHORIZATION);
    }
    headers.remove(crate::auth::CSRF_HEADER);
    strip_session_cookie(&mut headers);
    let source_ip = req
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip().to_string())
        .unwrap_or_default();
    let route = function.config.route.clone().unwrap_or_default();
    let body = body_bytes(req, &()).await?;

    let event = gateway_event(GatewayRequest {
        method: &method,
        path: &path,
        route: &route,
        rest: &rest,
        query: &query,
        headers: &headers,
        source_ip: &source_ip,
        body: &body,
    });
    let event =
        RawValue::from_string(event).map_err(|e| ApiError(IgnisError::internal(e.to_string())))?;
    // The trigger may call an alias or a version instead of the latest.
    let function = match function.config.http_qualifier.as_deref() {
        None => function,
        Some(q) => crate::handlers::invoke::resolve(&state, &function.id(), Some(q)).await?,
    };
    let stages = &state.engine.metrics().stages;
    stages.end(Stage::Handler, mark);
    let outcome = state.engine.invoke(function, event, Trigger::Http).await;
    let responding = stages.end(Stage::Answer, outcome.read_at);
    let mut extra = HeaderMap::new();
    outcome_headers(&outcome, &mut extra);
    // The engine checked the handler's response when the call ended (the
    // record holds what the caller gets): here it is only sent.
    let mut response = match (outcome.result, outcome.http) {
        (Ok(_), Some(reply)) => http_response(reply),
        (Ok(_), None) => {
            ApiError(IgnisError::internal("an HTTP call without its reply")).into_response()
        }
        (Err(e), _) => ApiError::from(e).into_response(),
    };
    response.headers_mut().extend(extra);
    stages.end(Stage::Respond, responding);
    Ok(response)
}

/// A checked reply as the HTTP response.
fn http_response(reply: ignis_core::http::HttpReply) -> Response {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut response = (status, reply.body).into_response();
    let headers = response.headers_mut();
    headers.remove(header::CONTENT_TYPE);
    for (k, v) in reply.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            headers.append(name, value);
        }
    }
    response
}

/// Removes ignis's session cookie from the `Cookie` headers, keeping the
/// others.
fn strip_session_cookie(headers: &mut HeaderMap) {
    let kept: Vec<String> = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .map(str::trim)
        .filter(|c| {
            let name = c.split('=').next().unwrap_or("");
            !c.is_empty() && name != crate::auth::COOKIE_TLS && name != crate::auth::COOKIE_PLAIN
        })
        .map(str::to_string)
        .collect();
    headers.remove(header::COOKIE);
    if !kept.is_empty() {
        if let Ok(v) = HeaderValue::from_str(&kept.join("; ")) {
            headers.insert(header::COOKIE, v);
        }
    }
}

struct GatewayRequest<'a> {
    method: &'a str,
    path: &'a str,
    route: &'a str,
    rest: &'a str,
    query: &'a str,
    headers: &'a HeaderMap,
    source_ip: &'a str,
    body: &'a [u8],
}

/// The API Gateway HTTP API (payload format 2.0) proxy event, borrowed from the request
/// and written straight to JSON text (no `Value` tree in between).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct GatewayEvent<'a> {
    version: &'static str,
    route_key: &'a str,
    raw_path: &'a str,
    raw_query_string: &'a str,
    headers: BTreeMap<&'a str, Cow<'a, str>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    cookies: Vec<Cow<'a, str>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    query_string_parameters: BTreeMap<String, String>,
    request_context: RequestContext<'a>,
    path_parameters: PathParameters<'a>,
    body: Cow<'a, str>,
    is_base64_encoded: bool,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct RequestContext<'a> {
    http: HttpContext<'a>,
    route_key: &'a str,
    stage: &'static str,
    time: String,
    time_epoch: i64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct HttpContext<'a> {
    method: &'a str,
    path: &'a str,
    protocol: &'static str,
    source_ip: &'a str,
    user_agent: &'a str,
}

#[derive(Serialize)]
struct PathParameters<'a> {
    proxy: &'a str,
}

fn gateway_event(r: GatewayRequest<'_>) -> String {
    let mut headers: BTreeMap<&str, Cow<'_, str>> = BTreeMap::new();
    let mut cookies = Vec::new();
    for (name, value) in r.headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        if name == header::COOKIE {
            match value {
                Cow::Borrowed(v) => cookies.extend(v.split(';').map(|c| Cow::Borrowed(c.trim()))),
                Cow::Owned(v) => {
                    cookies.extend(v.split(';').map(|c| Cow::Owned(c.trim().to_string())))
                }
            }
            continue;
        }
        match headers.entry(name.as_str()) {
            std::collections::btree_map::Entry::Occupied(mut e) => {
                let v = e.get_mut().to_mut();
                v.push(',');
                v.push_str(&value);
            }
            std::collections::btree_map::Entry::Vacant(e) => {
                e.insert(value);
            }
        }
    }
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    for pair in r.query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let (k, v) = (decode(k), decode(v));
        params
            .entry(k)
            .and_modify(|old| {
                old.push(',');
                old.push_str(&v);
            })
            .or_insert(v);
    }
    let (body, is_base64) = match std::str::from_utf8(r.body) {
        Ok(s) => (Cow::Borrowed(s), false),
        Err(_) => (
            Cow::Owned(base64::engine::general_purpose::STANDARD.encode(r.body)),
            true,
        ),
    };
    let now = chrono::Utc::now();
    let route_key = format!("ANY {}/{{proxy+}}", r.route);
    let event = GatewayEvent {
        version: "2.0",
        route_key: &route_key,
        raw_path: r.path,
        raw_query_string: r.query,
        headers,
        cookies,
        query_string_parameters: params,
        request_context: RequestContext {
            http: HttpContext {
                method: r.method,
                path: r.path,
                protocol: "HTTP/1.1",
                source_ip: r.source_ip,
                user_agent: r
                    .headers
                    .get(header::USER_AGENT)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or(""),
            },
            route_key: &route_key,
            stage: "$default",
            time: now.format("%d/%b/%Y:%H:%M:%S %z").to_string(),
            time_epoch: now.timestamp_millis(),
        },
        path_parameters: PathParameters {
            proxy: r.rest.trim_start_matches('/'),
        },
        body,
        is_base64_encoded: is_base64,
    };
    // Strings and maps of strings: serializing cannot fail.
    serde_json::to_string(&event).unwrap_or_default()
}

fn decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                match std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(b) => {
                        out.push(b);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_components() {
        assert_eq!(decode("a%20b+c"), "a b c");
        assert_eq!(decode("100%"), "100%");
        assert_eq!(decode("%zz"), "%zz");
        assert_eq!(decode("%C3%A9"), "é");
    }

    #[test]
    fn the_session_cookie_is_stripped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("theme=dark; ignis_session=secret; __Host-ignis_session=s2"),
        );
        strip_session_cookie(&mut h);
        assert_eq!(h.get(header::COOKIE).unwrap(), "theme=dark");
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("ignis_session=secret"),
        );
        strip_session_cookie(&mut h);
        assert!(h.get(header::COOKIE).is_none());
    }

    #[test]
    fn builds_a_v2_event() {
        let mut headers = HeaderMap::new();
        headers.insert("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2"));
        headers.insert("cookie", HeaderValue::from_static("s=1; t=2"));
        let e: serde_json::Value = serde_json::from_str(&gateway_event(GatewayRequest {
            method: "PATCH",
            path: "/hello/x/y",
            route: "/hello",
            rest: "/x/y",
            query: "a=1&b=x%20y&a=2",
            headers: &headers,
            source_ip: "127.0.0.1",
            body: b"hi",
        }))
        .unwrap();
        assert_eq!(e["rawPath"], "/hello/x/y");
        assert_eq!(e["rawQueryString"], "a=1&b=x%20y&a=2");
        assert_eq!(e["queryStringParameters"]["a"], "1,2");
        assert_eq!(e["queryStringParameters"]["b"], "x y");
        assert_eq!(e["headers"]["x-a"], "1,2");
        assert_eq!(e["cookies"][1], "t=2");
        assert_eq!(e["requestContext"]["http"]["method"], "PATCH");
        assert_eq!(e["pathParameters"]["proxy"], "x/y");
        assert_eq!(e["body"], "hi");
        assert_eq!(e["isBase64Encoded"], false);
    }
}
