//! The HTTP surface of ignis.
//!
//! `router(state)` builds the whole application: the management API under
//! `/api/v1`, the invoke API, HTTP triggers under `/fn/`, and the OpenAPI
//! document generated from the handlers' annotations. [`ApiError`] is the
//! only place where errors become status codes.

pub mod asyncq;
pub mod auth;
pub mod console;
mod error;
mod extract;
pub mod handlers;
pub mod lambda;
mod openapi;
mod registry;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::DefaultBodyLimit;
use axum::routing::{any, delete, get, post, put};
use axum::Router;
use ignis_engine::Engine;

pub use error::{status_of, ApiError, ApiResult, ErrorBody};
pub use openapi::ApiDoc;
pub use registry::Registry;

/// Limits of the API.
#[derive(Debug, Clone)]
pub struct ApiConfig {
    /// Largest code archive, bytes (zip, or the sum of inline files).
    pub max_code_bytes: u64,
    /// Largest invoke payload, bytes.
    pub max_event_bytes: usize,
    /// `/metrics` without credentials (many Prometheus setups scrape so).
    pub metrics_public: bool,
    /// Where the web console's files come from.
    pub console: console::Source,
    /// The asynchronous queue's size and pace.
    pub async_queue: asyncq::AsyncConfig,
    /// What the Lambda-compatible API puts in ARNs.
    pub aws_region: String,
    pub aws_account: String,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            max_code_bytes: ignis_package::DEFAULT_MAX_ARCHIVE_BYTES,
            max_event_bytes: 6 * 1024 * 1024,
            metrics_public: false,
            console: console::Source::Embedded,
            async_queue: asyncq::AsyncConfig::default(),
            aws_region: "us-east-1".to_string(),
            aws_account: "000000000000".to_string(),
        }
    }
}

/// Shared state of every handler.
pub struct AppState {
    pub registry: Registry,
    pub engine: Engine,
    pub auth: Arc<ignis_auth::Auth>,
    pub config: ApiConfig,
    pub started: Instant,
    /// Label value (`io.ignis.instance`) of this server's sandboxes.
    pub instance: String,
    /// What every route requires ([`auth::access_table`]).
    pub access: Vec<auth::RouteAccess>,
    /// Asynchronous invocations (the workers run once [`asyncq::start`]ed).
    pub asyncq: Arc<asyncq::AsyncQueue>,
}

impl AppState {
    pub fn new(
        registry: Registry,
        engine: Engine,
        auth: Arc<ignis_auth::Auth>,
        config: ApiConfig,
        instance: String,
    ) -> Self {
        let asyncq = Arc::new(asyncq::AsyncQueue::new(
            registry.store().clone(),
            config.async_queue.clone(),
        ));
        Self {
            registry,
            engine,
            auth,
            asyncq,
            config,
            started: Instant::now(),
            instance,
            access: auth::access_table(),
        }
    }
}

pub type SharedState = Arc<AppState>;

/// The routes of one namespace's functions, nested under `/api/v1` (the
/// default namespace) and `/api/v1/namespaces/{namespace}`.
fn function_routes(management_limit: usize, event_limit: usize) -> Router<SharedState> {
    use handlers::{events, functions, invoke, metrics, versions};
    Router::new()
        .route("/functions", get(functions::list).post(functions::create))
        .route(
            "/functions/{name}",
            get(functions::get)
                .put(functions::update)
                .delete(functions::delete),
        )
        .route("/functions/{name}/code", get(functions::code))
        .route("/functions/{name}/warm", post(functions::warm))
        .route("/functions/{name}/invocations", get(invoke::invocations))
        .route(
            "/functions/{name}/invocations/{id}",
            get(invoke::invocation),
        )
        .route("/functions/{name}/files", get(functions::files))
        .route(
            "/functions/{name}/versions",
            get(functions::versions).post(versions::publish),
        )
        .route(
            "/functions/{name}/versions/{version}",
            delete(versions::delete_version),
        )
        .route(
            "/functions/{name}/aliases",
            get(versions::list_aliases).post(versions::create_alias),
        )
        .route(
            "/functions/{name}/aliases/{alias}",
            get(versions::get_alias)
                .put(versions::update_alias)
                .delete(versions::delete_alias),
        )
        .route(
            "/functions/{name}/sandboxes",
            get(handlers::health::sandboxes),
        )
        .route("/functions/{name}/test-events", get(functions::test_events))
        .route(
            "/functions/{name}/test-events/{event}",
            put(functions::put_test_event).delete(functions::delete_test_event),
        )
        .route("/functions/{name}/metrics", get(metrics::series))
        .route("/functions/{name}/dead-letters", get(events::dead_letters))
        .route(
            "/functions/{name}/dead-letters/{id}",
            delete(events::delete_dead_letter),
        )
        .route(
            "/functions/{name}/dead-letters/{id}/retry",
            post(events::redrive),
        )
        .layer(DefaultBodyLimit::max(management_limit))
        .route(
            "/functions/{name}/invoke",
            post(invoke::invoke).layer(DefaultBodyLimit::max(event_limit)),
        )
}

/// The whole HTTP application.
pub fn router(state: SharedState) -> Router {
    use handlers::{access, health, metrics, triggers};
    // Base64 makes a zip 4/3 larger; allow for the JSON around it.
    let management_limit = (state.config.max_code_bytes as usize) / 3 * 4 + (1 << 20);
    let event_limit = state.config.max_event_bytes;
    let api = Router::new()
        .route("/health", get(health::health))
        .route("/openapi.json", get(openapi::document))
        .route(
            "/session",
            get(access::session)
                .post(access::login)
                .delete(access::logout),
        )
        .route("/whoami", get(access::whoami))
        .route("/keys", get(access::list_keys).post(access::create_key))
        .route("/keys/{id}", delete(access::revoke_key))
        .route(
            "/keys/{id}/aws-credentials",
            get(access::list_aws_credentials).post(access::create_aws_credential),
        )
        .route(
            "/keys/{id}/aws-credentials/{access_key_id}",
            delete(access::revoke_aws_credential),
        )
        .route("/audit", get(access::audit))
        .route("/invocations/{id}", get(handlers::events::get_event))
        .route(
            "/namespaces",
            get(access::list_namespaces).post(access::create_namespace),
        )
        .route("/namespaces/{namespace}", delete(access::delete_namespace))
        .route("/pools", get(health::pools))
        .route("/metrics/summary", get(metrics::summary))
        .route("/metrics/stream", get(metrics::stream))
        .route("/metrics/series", get(metrics::system_series))
        .route("/metrics/errors", get(metrics::recent_errors))
        .route("/metrics/backends", get(metrics::backends))
        .layer(DefaultBodyLimit::max(64 * 1024))
        .merge(function_routes(management_limit, event_limit))
        .nest(
            "/namespaces/{namespace}",
            function_routes(management_limit, event_limit),
        );
    Router::new()
        .nest("/api/v1", api)
        .route("/metrics", get(metrics::prometheus))
        .route(
            "/fn/{*path}",
            any(triggers::trigger).layer(DefaultBodyLimit::max(event_limit)),
        )
        // After routing: the middleware knows the matched route.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::middleware,
        ))
        // The Lambda API authenticates with SigV4, in its own layer.
        .merge(lambda::router(&state))
        .fallback(handlers::not_found)
        .method_not_allowed_fallback(handlers::method_not_allowed)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            handlers::panicked,
        ))
        // Failed calls are the functions' business, logged by the engine; an
        // internal error is logged by ApiError. No per-response error logs.
        .layer(tower_http::trace::TraceLayer::new_for_http().on_failure(()))
        // Credentials never reach a log line.
        .layer(
            tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer::new([
                axum::http::header::AUTHORIZATION,
                axum::http::header::COOKIE,
                axum::http::HeaderName::from_static(auth::CSRF_HEADER),
            ]),
        )
        .with_state(state)
}
