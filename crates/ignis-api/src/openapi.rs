//! The OpenAPI 3 document, generated from the handlers' annotations. The
//! function routes are annotated once (the default namespace's paths) and
//! copied under `/api/v1/namespaces/{namespace}` here.

use axum::Json;
use utoipa::openapi::path::{Parameter, ParameterBuilder, ParameterIn};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Required, Schema};
use utoipa::{Modify, OpenApi};

use crate::handlers::{access, events, functions, health, invoke, metrics, triggers, versions};

#[derive(OpenApi)]
#[openapi(
    info(title = "ignis", description = "Self-hosted serverless functions: management and invoke API. \
        Every request but health, the OpenAPI document, the login and public HTTP triggers needs \
        `Authorization: Bearer <key>` or the console's session cookie (with `X-Ignis-Csrf` on \
        requests that change something). Functions live in namespaces: `/api/v1/functions/...` is \
        the `default` namespace, `/api/v1/namespaces/{namespace}/functions/...` any other."),
    paths(
        functions::create, functions::list, functions::get, functions::update,
        functions::delete, functions::code, functions::warm,
        invoke::invoke, invoke::invocations, invoke::invocation,
        functions::files, functions::versions, functions::test_events,
        functions::put_test_event, functions::delete_test_event,
        versions::publish, versions::delete_version, versions::create_alias,
        versions::list_aliases, versions::get_alias, versions::update_alias, versions::delete_alias,
        health::health, health::pools, health::sandboxes, document,
        triggers::trigger,
        metrics::summary, metrics::series, metrics::stream, metrics::prometheus,
        metrics::system_series, metrics::recent_errors, metrics::backends,
        access::whoami, access::session, access::login, access::logout,
        access::list_keys, access::create_key, access::revoke_key, access::audit,
        access::list_namespaces, access::create_namespace, access::delete_namespace,
        access::create_aws_credential, access::list_aws_credentials, access::revoke_aws_credential,
        events::get_event, events::dead_letters, events::redrive, events::delete_dead_letter,
    ),
    components(schemas(
        ignis_core::Function, ignis_core::FunctionConfig, ignis_core::FunctionPatch,
        ignis_core::Runtime, ignis_core::BackendKind, ignis_core::HttpAuth, ignis_core::InvocationRecord,
        ignis_core::InvocationStatus, ignis_core::StartKind, ignis_core::Trigger, ignis_core::ErrorKind,
        ignis_core::auth::Role, ignis_core::auth::Namespaces, ignis_core::auth::KeyRecord,
        ignis_core::auth::AuditEntry, ignis_core::auth::NamespaceInfo,
        ignis_core::CodeInput, ignis_core::CreateFunctionRequest, ignis_core::UpdateFunctionRequest,
        functions::FunctionList, functions::WarmRequest, functions::WarmResponse,
        functions::FunctionFiles, functions::VersionList, functions::TestEventList,
        ignis_core::FunctionVersion, ignis_core::TestEvent, ignis_core::Alias,
        versions::PublishRequest, versions::CreateAliasRequest, versions::UpdateAliasRequest,
        versions::AliasList, invoke::Accepted, events::DeadLetters,
        ignis_core::AsyncEvent, ignis_core::AsyncStatus, ignis_store::QueueStat,
        access::AwsCredentialList, access::CreatedAwsCredential, ignis_core::auth::AwsCredentialRecord,
        metrics::RecentErrors, metrics::Backends, metrics::BackendFigures,
        metrics::Summary, metrics::AsyncSummary, metrics::FunctionSummary, metrics::Series, metrics::Point, invoke::InvocationList, health::Health, health::Pools, health::SandboxList,
        access::WhoAmI, access::LoginRequest, access::KeyList, access::CreateKeyRequest, access::CreatedKey,
        access::AuditList, access::NamespaceList, access::CreateNamespaceRequest,
        crate::error::ErrorBody, crate::error::ErrorDetail,
    )),
    modifiers(&Security, &Namespaced, &CommonResponses),
    tags(
        (name = "functions", description = "Deploy and manage functions"),
        (name = "invoke", description = "Call functions and read their records"),
        (name = "triggers", description = "HTTP triggers"),
        (name = "system", description = "Health and introspection"),
        (name = "metrics", description = "Metrics: summary, series, live stream, Prometheus"),
        (name = "access", description = "Keys, sessions, namespaces, the audit log"),
    )
)]
pub struct ApiDoc;

/// The security schemes the operations refer to.
struct Security;

impl Modify for Security {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("ign_...")
                    .description(Some(
                        "An ignis API key. A request that carries a key is authenticated by \
                         the key alone: a session cookie beside it is not looked at.",
                    ))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
                crate::auth::COOKIE_PLAIN,
                "The console's session (`POST /api/v1/session`); `__Host-ignis_session` over \
                 HTTPS. Requests that change something also need `X-Ignis-Csrf`.",
            ))),
        );
    }
}

/// Copies every `/api/v1/functions...` path under
/// `/api/v1/namespaces/{namespace}`, with the namespace parameter.
struct Namespaced;

fn namespace_param() -> Parameter {
    ParameterBuilder::new()
        .name("namespace")
        .parameter_in(ParameterIn::Path)
        .required(Required::True)
        .description(Some("Namespace name"))
        .schema(Some(Schema::Object(
            utoipa::openapi::ObjectBuilder::new()
                .schema_type(utoipa::openapi::schema::Type::String)
                .pattern(Some(ignis_core::NAME_PATTERN))
                .build(),
        )))
        .build()
}

impl Modify for Namespaced {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let copies: Vec<(String, utoipa::openapi::PathItem)> = doc
            .paths
            .paths
            .iter()
            .filter(|(p, _)| p.starts_with("/api/v1/functions"))
            .map(|(p, item)| {
                let mut item = item.clone();
                for op in [
                    &mut item.get,
                    &mut item.put,
                    &mut item.post,
                    &mut item.delete,
                    &mut item.patch,
                ]
                .into_iter()
                .flatten()
                {
                    let params = op.parameters.get_or_insert_with(Vec::new);
                    params.insert(0, namespace_param());
                    // Operation ids stay unique.
                    if let Some(id) = &mut op.operation_id {
                        id.push_str("_in_namespace");
                    }
                    // `all_namespaces` only on the un-prefixed listing.
                    params.retain(|p| p.name != "all_namespaces");
                }
                (
                    p.replacen("/api/v1", "/api/v1/namespaces/{namespace}", 1),
                    item,
                )
            })
            .collect();
        for (path, item) in copies {
            doc.paths.paths.insert(path, item);
        }
    }
}

/// The answers every operation of a kind can give before its handler runs,
/// added where an operation's annotation leaves them out: a 400 for a path,
/// query or body that does not parse or validate; a 413 for a body over the
/// limit; a 401 and a 429 (the failed-authentication limiter) wherever
/// credentials are looked at; a 403 where a role is checked; a 507 where
/// something is stored.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::Operation;
        use utoipa::openapi::{Ref, ResponseBuilder};
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    utoipa::openapi::ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        for (path, item) in doc.paths.paths.iter_mut() {
            let ops: [(&str, &mut Option<Operation>); 5] = [
                ("get", &mut item.get),
                ("put", &mut item.put),
                ("post", &mut item.post),
                ("delete", &mut item.delete),
                ("patch", &mut item.patch),
            ];
            for (method, op) in ops {
                let Some(op) = op else { continue };
                let has_params = op.parameters.as_ref().is_some_and(|p| !p.is_empty());
                let has_body = op.request_body.is_some();
                let authenticated = op
                    .security
                    .as_ref()
                    .is_some_and(|reqs| reqs.iter().any(|r| r != &Default::default()));
                // Who may call these is decided by authentication alone.
                let role_checked = !matches!(
                    (method, path.as_str()),
                    ("get", "/api/v1/whoami")
                        | ("get" | "delete", "/api/v1/session")
                        | ("get", "/api/v1/namespaces")
                ) && !path.starts_with("/fn/");
                let mut add = |status: &str, description: &str| {
                    op.responses
                        .responses
                        .entry(status.to_string())
                        .or_insert_with(|| error(description).into());
                };
                if has_params || has_body {
                    add("400", "Invalid path, query or body");
                }
                if has_body {
                    add("413", "Body over the size limit");
                }
                // Anything that stores something (an asynchronous invoke
                // included) can find the data directory's disk full.
                if matches!(method, "post" | "put" | "delete") && !path.starts_with("/fn/") {
                    add(
                        "507",
                        "The data directory's disk is full: nothing was stored",
                    );
                }
                if authenticated {
                    add("401", "No or bad credentials");
                    add("429", "Too many failed authentications from this address");
                    if role_checked {
                        add("403", "Not allowed");
                    }
                }
            }
        }
    }
}

#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system",
    responses((status = 200, description = "This document", content_type = "application/json")),
    security(()))]
pub async fn document() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
