//! The OpenAPI 3 document, generated from the handlers' annotations.

use axum::Json;
use utoipa::OpenApi;

use crate::handlers::{functions, health, invoke, metrics, triggers};

#[derive(OpenApi)]
#[openapi(
    info(title = "ignis", description = "Self-hosted serverless functions: management and invoke API."),
    paths(
        functions::create, functions::list, functions::get, functions::update,
        functions::delete, functions::code, functions::warm,
        invoke::invoke, invoke::invocations,
        health::health, health::pools,
        triggers::trigger,
        metrics::summary, metrics::series, metrics::stream, metrics::prometheus,
    ),
    components(schemas(
        ignis_core::Function, ignis_core::FunctionConfig, ignis_core::FunctionPatch,
        ignis_core::Runtime, ignis_core::BackendKind, ignis_core::InvocationRecord,
        ignis_core::InvocationStatus, ignis_core::StartKind, ignis_core::Trigger, ignis_core::ErrorKind,
        functions::CodeInput, functions::CreateFunctionRequest, functions::UpdateFunctionRequest,
        functions::FunctionList, functions::WarmRequest, functions::WarmResponse,
        metrics::Summary, metrics::FunctionSummary, metrics::Series, metrics::Point, invoke::InvocationList, health::Health, health::Pools,
        crate::error::ErrorBody, crate::error::ErrorDetail,
    )),
    tags(
        (name = "functions", description = "Deploy and manage functions"),
        (name = "invoke", description = "Call functions and read their records"),
        (name = "triggers", description = "HTTP triggers"),
        (name = "system", description = "Health and introspection"),
        (name = "metrics", description = "Metrics: summary, series, live stream, Prometheus"),
    )
)]
pub struct ApiDoc;

pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
