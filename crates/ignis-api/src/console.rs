//! The web console, embedded in the binary (`web/dist`, built by `npm ci &&
//! npm run build` in `web/`). Hashed assets are served immutable;
//! `index.html` is never cached; every other GET outside the API falls back
//! to `index.html`, so any console URL can be opened and shared. A binary
//! built without the console serves a page that says how to build it.
//! `--console-dir DIR` serves the files of `DIR` instead (for working on
//! the console without rebuilding ignis).

use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;

#[derive(RustEmbed)]
#[folder = "../../web/dist/"]
#[allow_missing = true]
pub struct Assets;

const NOT_BUILT: &str = "<!doctype html><html><head><meta charset=utf-8><title>ignis</title></head>\
<body style=\"font-family:system-ui;max-width:40rem;margin:3rem auto\"><h1>The console is not built</h1>\
<p>This ignis binary was built without its web console. Build it with</p>\
<pre>cd web &amp;&amp; npm ci &amp;&amp; npm run build</pre><p>then rebuild ignis \
(<code>cargo build --release</code>; <code>make run</code> does both). The API works without it: \
<a href=\"/api/v1/openapi.json\">/api/v1/openapi.json</a>.</p></body></html>";

/// Headers every console response carries: the page loads nothing from
/// anywhere but this server, and cannot be framed.
fn secure(headers: &mut HeaderMap) {
    let set = |h: &mut HeaderMap, k: &'static str, v: &'static str| {
        h.insert(k, HeaderValue::from_static(v));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
         img-src 'self' data: blob:; connect-src 'self'; font-src 'self'; \
         frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    );
    set(headers, "x-frame-options", "DENY");
    set(headers, "x-content-type-options", "nosniff");
    set(headers, "referrer-policy", "same-origin");
}

/// Where the console's files come from.
#[derive(Debug, Clone, Default)]
pub enum Source {
    /// Built into the binary (`web/dist` when it was compiled).
    #[default]
    Embedded,
    /// A directory read at run time (`--console-dir`).
    Dir(std::path::PathBuf),
}

impl Source {
    /// Whether there is a console to serve.
    pub fn built(&self) -> bool {
        match self {
            Source::Embedded => Assets::get("index.html").is_some(),
            Source::Dir(d) => d.join("index.html").is_file(),
        }
    }

    async fn read(&self, path: &str) -> Option<(Vec<u8>, String)> {
        match self {
            Source::Dir(dir) => {
                if path.split('/').any(|s| s == ".." || s.is_empty()) {
                    return None;
                }
                let bytes = tokio::fs::read(dir.join(path)).await.ok()?;
                Some((bytes, mime_of(path).to_string()))
            }
            Source::Embedded => {
                let asset = Assets::get(path)?;
                Some((
                    asset.data.into_owned(),
                    asset.metadata.mimetype().to_string(),
                ))
            }
        }
    }
}

fn mime_of(path: &str) -> &'static str {
    match path.rsplit('.').next() {
        Some("html") => "text/html",
        Some("js") | Some("mjs") => "text/javascript",
        Some("css") => "text/css",
        Some("svg") => "image/svg+xml",
        Some("png") => "image/png",
        Some("json") | Some("map") => "application/json",
        Some("woff2") => "font/woff2",
        _ => "application/octet-stream",
    }
}

async fn file(source: &Source, path: &str, cache: &'static str) -> Option<Response> {
    let (data, mime) = source.read(path).await?;
    let mut r = (StatusCode::OK, data).into_response();
    let h = r.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&mime) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    secure(h);
    Some(r)
}

/// The page of the console (or the one that says it is not built).
pub async fn index(source: &Source) -> Response {
    file(source, "index.html", "no-cache")
        .await
        .unwrap_or_else(|| {
            let mut r = (StatusCode::OK, NOT_BUILT).into_response();
            let h = r.headers_mut();
            h.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            );
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            secure(h);
            r
        })
}

/// Serves `uri` from the console when it is one of its paths: `None` for
/// the API's paths (and methods other than GET and HEAD), which get the
/// API's JSON 404.
pub async fn serve(source: &Source, method: &Method, uri: &Uri) -> Option<Response> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    let path = uri.path();
    if path.starts_with("/api/") || path == "/api" || path.starts_with("/fn/") || path == "/metrics"
    {
        return None;
    }
    let rel = path.trim_start_matches('/');
    if let Some(asset) = rel.strip_prefix("assets/") {
        // Hashed names: cached for a year. A missing asset is a 404, not
        // the page (a stale page asking for an old chunk must fail loudly).
        return Some(
            file(
                source,
                &format!("assets/{asset}"),
                "public, max-age=31536000, immutable",
            )
            .await
            .unwrap_or_else(|| StatusCode::NOT_FOUND.into_response()),
        );
    }
    if !rel.is_empty() && rel != "index.html" {
        if let Some(r) = file(source, rel, "no-cache").await {
            return Some(r);
        }
    }
    Some(index(source).await)
}
