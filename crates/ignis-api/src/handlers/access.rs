//! Identity and access: console sessions, `whoami`, API keys, namespaces,
//! the audit log.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ignis_auth::{KeySpec, Principal, Via};
use ignis_core::auth::{
    AuditEntry, AwsCredentialRecord, KeyRecord, NamespaceInfo, Namespaces, Role,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use crate::auth::{auth_error, client_ip, is_tls, session_cookie, session_cookie_header};
use crate::extract::{parse_json, Caller, JsonBody};
use crate::handlers::functions::audited;
use crate::{ApiError, ApiResult, ErrorBody, SharedState};

/// Who the caller is.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct WhoAmI {
    pub key_id: String,
    pub key_name: String,
    pub role: Role,
    pub namespaces: Namespaces,
    /// `key`, `session` or `disabled` (authentication off).
    pub via: String,
    /// The session's CSRF token (cookie sessions only): send it as
    /// `X-Ignis-Csrf` on every request that changes something.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf: Option<String>,
}

fn whoami_of(p: &Principal, csrf: Option<String>) -> WhoAmI {
    WhoAmI {
        key_id: p.key_id.clone(),
        key_name: p.key_name.clone(),
        role: p.role,
        namespaces: p.namespaces.clone(),
        via: match p.via {
            Via::Key => "key",
            Via::Sigv4 => "sigv4",
            Via::Session => "session",
            Via::Disabled => "disabled",
        }
        .into(),
        csrf,
    }
}

#[utoipa::path(get, path = "/api/v1/whoami", tag = "access",
    responses(
        (status = 200, description = "The caller's key, role and namespaces", body = WhoAmI),
        (status = 401, description = "No or bad credentials", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn whoami(Caller(caller): Caller) -> Json<WhoAmI> {
    Json(whoami_of(&caller.principal, None))
}

#[utoipa::path(get, path = "/api/v1/session", tag = "access",
    responses(
        (status = 200, description = "The session's key, role and CSRF token", body = WhoAmI),
        (status = 401, description = "No session", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn session(Caller(caller): Caller) -> Json<WhoAmI> {
    Json(whoami_of(&caller.principal, caller.csrf))
}

/// Body of `POST /api/v1/session`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// An API key (`ign_...`).
    pub key: String,
}

impl std::fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LoginRequest { key: <redacted> }")
    }
}

#[utoipa::path(post, path = "/api/v1/session", tag = "access",
    request_body = LoginRequest,
    responses(
        (status = 201, description = "Logged in: the session cookie is set (HttpOnly, SameSite=Strict)", body = WhoAmI),
        (status = 400, description = "Bad body", body = ErrorBody),
        (status = 401, description = "Not a valid key", body = ErrorBody),
        (status = 429, description = "Too many failed attempts from this address", body = ErrorBody)),
    security(()))]
pub async fn login(State(state): State<SharedState>, req: Request) -> ApiResult<Response> {
    let ip = client_ip(&req);
    let tls = is_tls(req.headers());
    let body: LoginRequest = parse_json(req).await?;
    let auth = &state.auth;
    if !auth.enabled() {
        return Err(ApiError::invalid(
            "authentication is off on this server: there is nothing to log in to",
        ));
    }
    auth.check_rate(ip).map_err(auth_error)?;
    let principal = match auth.authenticate_key(&body.key) {
        Ok(p) => p,
        Err(e) => {
            if e.is_unauthenticated() {
                auth.failed(ip);
                auth.audit(None, "session.login", "", "Unauthorized").await;
            }
            return Err(auth_error(e));
        }
    };
    let session = auth.create_session(&principal).await.map_err(auth_error)?;
    auth.audit(Some(&principal), "session.login", &principal.key_id, "ok")
        .await;
    let max_age = ((session.expires_at_ms - auth.now_ms()) / 1000).max(0);
    let mut response = (
        StatusCode::CREATED,
        Json(whoami_of(
            &Principal {
                via: Via::Session,
                ..principal
            },
            Some(session.csrf),
        )),
    )
        .into_response();
    if let Some(v) = session_cookie_header(&session.cookie, max_age, tls) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

#[utoipa::path(delete, path = "/api/v1/session", tag = "access",
    responses(
        (status = 204, description = "Logged out: the session named by the cookie, if any, ends and its cookie is cleared"),
        (status = 401, description = "No or bad credentials", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn logout(
    State(state): State<SharedState>,
    Caller(caller): Caller,
    headers: HeaderMap,
) -> ApiResult<Response> {
    if let Some(cookie) = session_cookie(&headers) {
        state.auth.end_session(cookie).await.map_err(auth_error)?;
    }
    state
        .auth
        .audit(
            Some(&caller.principal),
            "session.logout",
            &caller.principal.key_id,
            "ok",
        )
        .await;
    let mut response = StatusCode::NO_CONTENT.into_response();
    if let Some(v) = session_cookie_header("", 0, is_tls(&headers)) {
        response.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(response)
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct KeyList {
    pub keys: Vec<KeyRecord>,
}

#[utoipa::path(get, path = "/api/v1/keys", tag = "access",
    responses(
        (status = 200, description = "Every key (never a secret)", body = KeyList),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Admin keys only", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn list_keys(State(state): State<SharedState>) -> Json<KeyList> {
    Json(KeyList {
        keys: state.auth.list_keys(),
    })
}

/// Body of `POST /api/v1/keys`.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyRequest {
    /// What the key is for (1 to 100 characters, no control characters,
    /// not only spaces).
    #[schema(
        max_length = 100,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f]*[^\\s\\x00-\\x1f\\x7f-\\x9f][^\\x00-\\x1f\\x7f-\\x9f]*$"
    )]
    pub name: String,
    pub role: Role,
    /// `"*"` (default) or the namespaces the key applies to. Admin keys
    /// apply to every namespace.
    #[serde(default)]
    pub namespaces: Namespaces,
    /// The key stops working this many seconds from now (default: never).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 315_360_000)]
    pub expires_in_s: Option<u64>,
}

/// A new key: the secret is shown here once and never again.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    /// The secret: `Authorization: Bearer <key>`. Store it now.
    pub key: String,
    #[serde(flatten)]
    pub record: KeyRecord,
}

#[utoipa::path(post, path = "/api/v1/keys", tag = "access",
    request_body = CreateKeyRequest,
    responses(
        (status = 201, description = "Created; the secret is in `key`, shown once", body = CreatedKey),
        (status = 400, description = "Invalid request", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Admin keys only", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn create_key(
    State(state): State<SharedState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<CreateKeyRequest>,
) -> ApiResult<(StatusCode, Json<CreatedKey>)> {
    let target = body.name.clone();
    let result = async {
        let now = state.auth.now_ms();
        let expires_at_ms = match body.expires_in_s {
            None => None,
            Some(s) if (1..=10 * 365 * 86_400).contains(&s) => Some(now + s as i64 * 1000),
            Some(_) => {
                return Err(ApiError::invalid(
                    "`expires_in_s` must be between 1 and 315360000 (10 years)",
                ))
            }
        };
        let (secret, record) = state
            .auth
            .create_key(KeySpec {
                name: body.name,
                role: body.role,
                namespaces: body.namespaces,
                expires_at_ms,
            })
            .await
            .map_err(auth_error)?;
        tracing::info!(key = %record.id, role = %record.role, "key created");
        Ok((
            StatusCode::CREATED,
            Json(CreatedKey {
                key: secret.expose().to_string(),
                record,
            }),
        ))
    }
    .await;
    audited(&state, &caller.principal, "key.create", &target, result).await
}

#[utoipa::path(delete, path = "/api/v1/keys/{id}", tag = "access",
    params(("id" = String, Path, description = "Key id (`key-...`)")),
    responses(
        (status = 200, description = "Revoked (its sessions end)", body = KeyRecord),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Admin keys only", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
        (status = 409, description = "The last active admin key", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn revoke_key(
    State(state): State<SharedState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<KeyRecord>> {
    let result = state
        .auth
        .revoke_key(&id)
        .await
        .map(Json)
        .map_err(auth_error);
    if result.is_ok() {
        tracing::info!(key = %id, "key revoked");
    }
    audited(&state, &caller.principal, "key.revoke", &id, result).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditParams {
    /// How many entries, newest first (1..=1000, default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct AuditList {
    pub entries: Vec<AuditEntry>,
}

#[utoipa::path(get, path = "/api/v1/audit", tag = "access",
    params(AuditParams),
    responses(
        (status = 200, description = "Management actions, newest first", body = AuditList),
        (status = 400, description = "Bad query", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Admin keys only", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn audit(
    State(state): State<SharedState>,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> ApiResult<Json<AuditList>> {
    let Query(params) = params.map_err(|e| ApiError::invalid(e.body_text()))?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid("`limit` must be between 1 and 1000"));
    }
    let entries = state.registry.store().list_audit(limit).await?;
    Ok(Json(AuditList { entries }))
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct NamespaceList {
    pub namespaces: Vec<NamespaceInfo>,
}

#[utoipa::path(get, path = "/api/v1/namespaces", tag = "access",
    responses(
        (status = 200, description = "The namespaces the key applies to", body = NamespaceList),
        (status = 401, description = "No or bad credentials", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn list_namespaces(
    State(state): State<SharedState>,
    Caller(caller): Caller,
) -> ApiResult<Json<NamespaceList>> {
    let namespaces = state
        .registry
        .store()
        .list_namespaces()
        .await?
        .into_iter()
        .filter(|n| caller.principal.sees(&n.name))
        .collect();
    Ok(Json(NamespaceList { namespaces }))
}

/// Body of `POST /api/v1/namespaces`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateNamespaceRequest {
    /// `[a-z0-9][a-z0-9-_]{0,63}`, like function names.
    #[schema(pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")]
    pub name: String,
}

#[utoipa::path(post, path = "/api/v1/namespaces", tag = "access",
    request_body = CreateNamespaceRequest,
    responses(
        (status = 201, description = "Created", body = NamespaceInfo),
        (status = 400, description = "Invalid name", body = ErrorBody),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Admin keys only", body = ErrorBody),
        (status = 409, description = "Exists already", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn create_namespace(
    State(state): State<SharedState>,
    Caller(caller): Caller,
    JsonBody(body): JsonBody<CreateNamespaceRequest>,
) -> ApiResult<(StatusCode, Json<NamespaceInfo>)> {
    let result = async {
        ignis_core::validate_namespace(&body.name)?;
        let ns = state.registry.store().create_namespace(&body.name).await?;
        Ok((StatusCode::CREATED, Json(ns)))
    }
    .await;
    audited(
        &state,
        &caller.principal,
        "namespace.create",
        &body.name,
        result,
    )
    .await
}

#[utoipa::path(delete, path = "/api/v1/namespaces/{namespace}", tag = "access",
    params(("namespace" = String, Path, description = "Namespace name", pattern = "^[a-z0-9][a-z0-9_-]{0,63}$")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 403, description = "Admin keys only", body = ErrorBody),
        (status = 404, description = "No such namespace", body = ErrorBody),
        (status = 409, description = "It still holds functions, or it is `default`", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn delete_namespace(
    State(state): State<SharedState>,
    Caller(caller): Caller,
    Path(namespace): Path<String>,
) -> ApiResult<StatusCode> {
    let result = async {
        if namespace == ignis_core::DEFAULT_NAMESPACE {
            return Err(ApiError(ignis_core::IgnisError::new(
                ignis_core::ErrorKind::Conflict,
                "the default namespace cannot be deleted",
            )));
        }
        if !state.registry.store().delete_namespace(&namespace).await? {
            return Err(ApiError::not_found(format!(
                "namespace `{namespace}` does not exist"
            )));
        }
        Ok(StatusCode::NO_CONTENT)
    }
    .await;
    audited(
        &state,
        &caller.principal,
        "namespace.delete",
        &namespace,
        result,
    )
    .await
}

/// AWS credentials of key `id` may be managed by an admin key or by the
/// key itself.
fn may_manage_credentials_of(caller: &Principal, id: &str) -> ApiResult<()> {
    let admin = matches!(
        ignis_auth::authorize(
            caller,
            ignis_auth::Action::ManageKeys,
            ignis_auth::Resource::System
        ),
        ignis_auth::Decision::Allow
    );
    if admin || caller.key_id == id {
        Ok(())
    } else {
        // Other keys do not exist for a key that is not an admin.
        Err(ApiError::not_found(
            "no such key (a key that is not an admin manages its own AWS credentials only)",
        ))
    }
}

/// New SigV4 credentials, shown once.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedAwsCredential {
    /// `AKIG...`: `aws_access_key_id`.
    pub access_key_id: String,
    /// `aws_secret_access_key`: shown only now (the server derives it again
    /// from its signing secret; it is not stored).
    pub secret_access_key: String,
    /// The key whose role and namespaces it carries.
    pub key_id: String,
    /// The region to sign for (any region is accepted; this one is in ARNs).
    pub region: String,
    pub created_at_ms: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AwsCredentialList {
    pub credentials: Vec<AwsCredentialRecord>,
}

#[utoipa::path(post, path = "/api/v1/keys/{id}/aws-credentials", tag = "access",
    params(("id" = String, Path, description = "Key id (`key-...`)")),
    responses(
        (status = 201, description = "Created: the secret is shown only in this answer", body = CreatedAwsCredential),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 404, description = "No such active key (or not the caller's own, for a key that is not an admin)", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn create_aws_credential(
    State(state): State<SharedState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<(StatusCode, Json<CreatedAwsCredential>)> {
    let result = async {
        may_manage_credentials_of(&caller.principal, &id)?;
        let (record, secret) = state
            .auth
            .create_aws_credential(&id)
            .await
            .map_err(auth_error)?;
        tracing::info!(key = %id, access_key_id = %record.access_key_id, "AWS credentials created");
        Ok((
            StatusCode::CREATED,
            Json(CreatedAwsCredential {
                access_key_id: record.access_key_id,
                secret_access_key: secret,
                key_id: record.key_id,
                region: state.config.aws_region.clone(),
                created_at_ms: record.created_at_ms,
            }),
        ))
    }
    .await;
    audited(
        &state,
        &caller.principal,
        "key.aws_credentials.create",
        &id,
        result,
    )
    .await
}

#[utoipa::path(get, path = "/api/v1/keys/{id}/aws-credentials", tag = "access",
    params(("id" = String, Path, description = "Key id (`key-...`)")),
    responses(
        (status = 200, description = "The key's AWS access key ids (revoked ones too); never the secrets", body = AwsCredentialList),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 404, description = "No such active key (or not the caller's own, for a key that is not an admin)", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn list_aws_credentials(
    State(state): State<SharedState>,
    Caller(caller): Caller,
    Path(id): Path<String>,
) -> ApiResult<Json<AwsCredentialList>> {
    may_manage_credentials_of(&caller.principal, &id)?;
    // A revoked or unknown key has no credentials to manage, as creating
    // one says: a 404, not an empty list that reads as "none yet".
    if state.auth.active_key(&id).is_none() {
        return Err(ApiError::not_found(format!("no active key {id}")));
    }
    Ok(Json(AwsCredentialList {
        credentials: state.auth.aws_credentials_of(&id),
    }))
}

#[utoipa::path(delete, path = "/api/v1/keys/{id}/aws-credentials/{access_key_id}", tag = "access",
    params(("id" = String, Path, description = "Key id (`key-...`)"),
           ("access_key_id" = String, Path, description = "`AKIG...`")),
    responses(
        (status = 200, description = "Revoked: requests signed with it fail from now on", body = AwsCredentialRecord),
        (status = 401, description = "No or bad credentials", body = ErrorBody),
        (status = 404, description = "No such credential of this key (or not the caller's own key)", body = ErrorBody)),
    security(("key" = []), ("session" = [])))]
pub async fn revoke_aws_credential(
    State(state): State<SharedState>,
    Caller(caller): Caller,
    Path((id, access_key_id)): Path<(String, String)>,
) -> ApiResult<Json<AwsCredentialRecord>> {
    let result = async {
        may_manage_credentials_of(&caller.principal, &id)?;
        if state
            .auth
            .aws_credential(&access_key_id)
            .is_none_or(|c| c.key_id != id)
        {
            return Err(ApiError::not_found("no such AWS access key id of this key"));
        }
        state
            .auth
            .revoke_aws_credential(&access_key_id)
            .await
            .map(Json)
            .map_err(auth_error)
    }
    .await;
    audited(
        &state,
        &caller.principal,
        "key.aws_credentials.revoke",
        &access_key_id,
        result,
    )
    .await
}
