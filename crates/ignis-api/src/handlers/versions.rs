//! Published versions and aliases: `POST /functions/{name}/versions`
//! freezes the current code and configuration as version N (callable as
//! `name:N`, never pruned); an alias names a published version, and may
//! send a share of the calls to a second one (a canary). Rolling an alias
//! back is one `PUT`.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use ignis_core::{validate_alias_name, validate_weights, Alias, FunctionVersion};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::extract::{path_param, Caller, Fid, JsonBody};
use crate::handlers::functions::{audited, lookup};
use crate::{ApiError, ApiResult, ErrorBody, SharedState};

/// Body of `POST /functions/{name}/versions`.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishRequest {
    /// What this version is (256 characters).
    #[serde(default)]
    #[schema(max_length = 256)]
    pub description: String,
    /// Publish only if the current version is this one (else 409): what was
    /// tested is what gets published.
    pub expected_version: Option<u64>,
}

#[utoipa::path(post, path = "/api/v1/functions/{name}/versions", tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    request_body = PublishRequest,
    responses(
        (status = 201, description = "The current version, published (an already published one is returned as it is)", body = FunctionVersion),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function", body = ErrorBody),
        (status = 409, description = "The current version is not `expected_version`", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn publish(
    State(state): State<SharedState>,
    Fid(id): Fid,
    Caller(caller): Caller,
    body: Option<JsonBody<PublishRequest>>,
) -> ApiResult<(StatusCode, Json<FunctionVersion>)> {
    let req = body.map(|b| b.0).unwrap_or_default();
    let result = publish_inner(&state, &id, req)
        .await
        .map(|v| (StatusCode::CREATED, Json(v)));
    audited(
        &state,
        &caller.principal,
        "function.publish",
        &id.to_string(),
        result,
    )
    .await
}

/// Publishes the current version of `id` (what `publish` and the Lambda
/// API's PublishVersion share).
pub(crate) async fn publish_inner(
    state: &SharedState,
    id: &ignis_core::FunctionId,
    req: PublishRequest,
) -> ApiResult<FunctionVersion> {
    {
        if req.description.chars().count() > ignis_core::function::limits::DESCRIPTION_CHARS {
            return Err(ApiError::invalid("`description` is over 256 characters"));
        }
        lookup(state, id)?;
        let v = state
            .registry
            .store()
            .publish_version(id, req.expected_version, &req.description)
            .await?;
        tracing::info!(function = %id, version = v.version, "version published");
        Ok(v)
    }
}

fn version_param(params: &axum::extract::RawPathParams) -> ApiResult<u64> {
    let raw = path_param(params, "version");
    raw.parse::<u64>()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| ApiError::invalid(format!("`{raw}` is not a version number")))
}

#[utoipa::path(delete, path = "/api/v1/functions/{name}/versions/{version}", tag = "functions",
    params(("name" = String, Path, description = "Function name"),
           ("version" = u64, Path, description = "A published version", minimum = 1)),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such published version", body = ErrorBody),
        (status = 409, description = "It is the current version, or an alias routes to it", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn delete_version(
    State(state): State<SharedState>,
    Fid(id): Fid,
    Caller(caller): Caller,
    params: axum::extract::RawPathParams,
) -> ApiResult<StatusCode> {
    let result = match version_param(&params) {
        Ok(version) => delete_version_inner(&state, &id, version)
            .await
            .map(|()| StatusCode::NO_CONTENT),
        Err(e) => Err(e),
    };
    audited(
        &state,
        &caller.principal,
        "function.delete_version",
        &id.to_string(),
        result,
    )
    .await
}

pub(crate) async fn delete_version_inner(
    state: &SharedState,
    id: &ignis_core::FunctionId,
    version: u64,
) -> ApiResult<()> {
    lookup(state, id)?;
    state.registry.store().delete_version(id, version).await?;
    state.registry.remove_version(id, version);
    state.engine.version_removed(id, version);
    Ok(())
}

/// Body of `POST /functions/{name}/aliases`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAliasRequest {
    /// `[A-Za-z0-9_-]`, 1 to 128, not only digits.
    #[schema(pattern = "^[A-Za-z0-9_-]*[A-Za-z_-][A-Za-z0-9_-]*$", max_length = 128)]
    pub name: String,
    /// A published version.
    #[schema(minimum = 1)]
    pub version: u64,
    /// Another published version and the share of calls it gets, e.g.
    /// `{"4": 0.1}`.
    #[serde(default)]
    #[schema(schema_with = weights_schema)]
    pub weights: BTreeMap<u64, f64>,
    #[serde(default)]
    #[schema(max_length = 256)]
    pub description: String,
}

/// `weights` as [`validate_weights`] takes them: at most one other version
/// (a decimal `u64`) with a share in (0, 1). That the version is not the
/// alias's own is beyond a schema.
fn weights_schema() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{AdditionalProperties, ObjectBuilder, Type};
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(
            "Another published version and the share of calls it gets, e.g. `{\"4\": 0.1}`; \
             `{}` sends every call to `version`.",
        ))
        .property_names(Some(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some("^[0-9]{1,19}$")),
        ))
        .additional_properties(Some(AdditionalProperties::RefOr(
            ObjectBuilder::new()
                .schema_type(Type::Number)
                .exclusive_minimum(Some(0.0))
                .exclusive_maximum(Some(1.0))
                .into(),
        )))
        .max_properties(Some(1))
        .build()
}

fn weights_schema_nullable() -> utoipa::openapi::schema::Object {
    use utoipa::openapi::schema::{SchemaType, Type};
    let mut o = weights_schema();
    o.schema_type = SchemaType::from_iter([Type::Object, Type::Null]);
    o
}

/// Body of `PUT /functions/{name}/aliases/{alias}`: the fields given change.
#[derive(Debug, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateAliasRequest {
    #[schema(minimum = 1)]
    pub version: Option<u64>,
    /// `{}` sends every call to `version` again.
    #[schema(schema_with = weights_schema_nullable)]
    pub weights: Option<BTreeMap<u64, f64>>,
    #[schema(max_length = 256)]
    pub description: Option<String>,
    /// Update only if the alias's revision is this one (else 409).
    pub revision_id: Option<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AliasList {
    pub aliases: Vec<Alias>,
}

fn new_revision() -> String {
    // A UUID v4, as Lambda's revision ids are.
    uuid::Uuid::new_v4().to_string()
}

fn check_alias(
    name: &str,
    version: u64,
    weights: &BTreeMap<u64, f64>,
    description: &str,
) -> ApiResult<()> {
    validate_alias_name(name)?;
    if version == 0 {
        return Err(ApiError::invalid(
            "`version` must be a published version number",
        ));
    }
    validate_weights(version, weights)?;
    if description.chars().count() > ignis_core::function::limits::DESCRIPTION_CHARS {
        return Err(ApiError::invalid("`description` is over 256 characters"));
    }
    Ok(())
}

#[utoipa::path(post, path = "/api/v1/functions/{name}/aliases", tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    request_body = CreateAliasRequest,
    responses(
        (status = 201, description = "Created", body = Alias),
        (status = 400, description = "Invalid request, or a version that is not published", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function or version", body = ErrorBody),
        (status = 409, description = "The alias exists", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn create_alias(
    State(state): State<SharedState>,
    Fid(id): Fid,
    Caller(caller): Caller,
    JsonBody(req): JsonBody<CreateAliasRequest>,
) -> ApiResult<(StatusCode, Json<Alias>)> {
    let target = format!("{id}:{}", req.name);
    let result = create_alias_inner(&state, &id, req)
        .await
        .map(|a| (StatusCode::CREATED, Json(a)));
    audited(&state, &caller.principal, "alias.create", &target, result).await
}

pub(crate) async fn create_alias_inner(
    state: &SharedState,
    id: &ignis_core::FunctionId,
    req: CreateAliasRequest,
) -> ApiResult<Alias> {
    {
        check_alias(&req.name, req.version, &req.weights, &req.description)?;
        lookup(state, id)?;
        let now = ignis_core::now_ms();
        let alias = Alias {
            name: req.name,
            version: req.version,
            weights: req.weights,
            description: req.description,
            revision_id: new_revision(),
            created_at_ms: now,
            updated_at_ms: now,
        };
        let stored = state.registry.store().put_alias(id, &alias, true).await?;
        state.registry.put_alias(id, stored.clone());
        Ok(stored)
    }
}

#[utoipa::path(get, path = "/api/v1/functions/{name}/aliases", tag = "functions",
    params(("name" = String, Path, description = "Function name")),
    responses(
        (status = 200, description = "The function's aliases, by name", body = AliasList),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn list_aliases(
    State(state): State<SharedState>,
    Fid(id): Fid,
) -> ApiResult<Json<AliasList>> {
    lookup(&state, &id)?;
    Ok(Json(AliasList {
        aliases: state.registry.aliases(&id),
    }))
}

fn alias_param(params: &axum::extract::RawPathParams) -> String {
    path_param(params, "alias")
}

#[utoipa::path(get, path = "/api/v1/functions/{name}/aliases/{alias}", tag = "functions",
    params(("name" = String, Path, description = "Function name"),
           ("alias" = String, Path, description = "Alias name")),
    responses(
        (status = 200, description = "The alias", body = Alias),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function or alias", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn get_alias(
    State(state): State<SharedState>,
    Fid(id): Fid,
    params: axum::extract::RawPathParams,
) -> ApiResult<Json<Alias>> {
    lookup(&state, &id)?;
    let name = alias_param(&params);
    state
        .registry
        .alias(&id, &name)
        .map(Json)
        .ok_or_else(|| ApiError::not_found(format!("function `{id}` has no alias `{name}`")))
}

#[utoipa::path(put, path = "/api/v1/functions/{name}/aliases/{alias}", tag = "functions",
    params(("name" = String, Path, description = "Function name"),
           ("alias" = String, Path, description = "Alias name")),
    request_body = UpdateAliasRequest,
    responses(
        (status = 200, description = "Updated: new calls follow it at once", body = Alias),
        (status = 400, description = "Invalid request, or a version that is not published", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function, alias or version", body = ErrorBody),
        (status = 409, description = "The revision changed", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn update_alias(
    State(state): State<SharedState>,
    Fid(id): Fid,
    Caller(caller): Caller,
    params: axum::extract::RawPathParams,
    JsonBody(req): JsonBody<UpdateAliasRequest>,
) -> ApiResult<Json<Alias>> {
    let name = alias_param(&params);
    let target = format!("{id}:{name}");
    let result = update_alias_inner(&state, &id, &name, req).await.map(Json);
    audited(&state, &caller.principal, "alias.update", &target, result).await
}

pub(crate) async fn update_alias_inner(
    state: &SharedState,
    id: &ignis_core::FunctionId,
    name: &str,
    req: UpdateAliasRequest,
) -> ApiResult<Alias> {
    {
        lookup(state, id)?;
        let current = state
            .registry
            .alias(id, name)
            .ok_or_else(|| ApiError::not_found(format!("function `{id}` has no alias `{name}`")))?;
        if let Some(expected) = &req.revision_id {
            if *expected != current.revision_id {
                return Err(ApiError(ignis_core::IgnisError::new(
                    ignis_core::ErrorKind::Conflict,
                    format!(
                        "alias `{name}` is at revision {}, not {expected}",
                        current.revision_id
                    ),
                )));
            }
        }
        let version = req.version.unwrap_or(current.version);
        // A new version without new weights drops weights that would name it.
        let weights = req.weights.unwrap_or_else(|| {
            current
                .weights
                .iter()
                .filter(|(v, _)| **v != version)
                .map(|(v, w)| (*v, *w))
                .collect()
        });
        let description = req.description.unwrap_or(current.description.clone());
        check_alias(name, version, &weights, &description)?;
        let alias = Alias {
            name: name.to_string(),
            version,
            weights,
            description,
            revision_id: new_revision(),
            created_at_ms: current.created_at_ms,
            updated_at_ms: ignis_core::now_ms(),
        };
        let stored = state.registry.store().put_alias(id, &alias, false).await?;
        state.registry.put_alias(id, stored.clone());
        tracing::info!(function = %id, alias = %name, version, "alias updated");
        Ok(stored)
    }
}

#[utoipa::path(delete, path = "/api/v1/functions/{name}/aliases/{alias}", tag = "functions",
    params(("name" = String, Path, description = "Function name"),
           ("alias" = String, Path, description = "Alias name")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Not allowed", body = ErrorBody),
        (status = 404, description = "No such function or alias", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn delete_alias(
    State(state): State<SharedState>,
    Fid(id): Fid,
    Caller(caller): Caller,
    params: axum::extract::RawPathParams,
) -> ApiResult<StatusCode> {
    let name = alias_param(&params);
    let target = format!("{id}:{name}");
    let result = delete_alias_inner(&state, &id, &name)
        .await
        .map(|()| StatusCode::NO_CONTENT);
    audited(&state, &caller.principal, "alias.delete", &target, result).await
}

pub(crate) async fn delete_alias_inner(
    state: &SharedState,
    id: &ignis_core::FunctionId,
    name: &str,
) -> ApiResult<()> {
    let f = lookup(state, id)?;
    if f.config.http_qualifier.as_deref() == Some(name) {
        return Err(ApiError(ignis_core::IgnisError::new(
            ignis_core::ErrorKind::Conflict,
            format!("the HTTP trigger of `{id}` calls alias `{name}`: point it elsewhere first"),
        )));
    }
    if !state.registry.store().delete_alias(id, name).await? {
        return Err(ApiError::not_found(format!(
            "function `{id}` has no alias `{name}`"
        )));
    }
    state.registry.remove_alias(id, name);
    Ok(())
}
