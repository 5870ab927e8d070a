//! The data of identity and access: roles, API keys (as stored: never the
//! secret), console sessions, audit entries, namespaces. The logic (key
//! format, digests, the authorization decision) is in `ignis-auth`.

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use crate::error::IgnisError;

/// What a key may do (docs/security.md has the full table).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Everything, keys and namespaces included.
    Admin,
    /// Create, update, delete and read functions, invoke, read logs and
    /// metrics, in its namespaces.
    Developer,
    /// Read functions (env values masked), logs and metrics.
    Viewer,
    /// Invoke only (the invoke API and private HTTP triggers).
    Invoker,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Admin, Role::Developer, Role::Viewer, Role::Invoker];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Developer => "developer",
            Role::Viewer => "viewer",
            Role::Invoker => "invoker",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = IgnisError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                IgnisError::invalid(format!(
                    "unknown role `{s}`: expected admin, developer, viewer or invoker"
                ))
            })
    }
}

/// The namespaces a key applies to. JSON: `"*"` for every namespace, else a
/// list of names.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Namespaces {
    #[default]
    All,
    Only(BTreeSet<String>),
}

impl Namespaces {
    pub fn contains(&self, ns: &str) -> bool {
        match self {
            Namespaces::All => true,
            Namespaces::Only(set) => set.contains(ns),
        }
    }

    pub fn is_all(&self) -> bool {
        matches!(self, Namespaces::All)
    }
}

impl Serialize for Namespaces {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Namespaces::All => s.serialize_str("*"),
            Namespaces::Only(set) => set.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for Namespaces {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Raw {
            Star(String),
            List(BTreeSet<String>),
        }
        match Raw::deserialize(d)? {
            Raw::Star(s) if s == "*" => Ok(Namespaces::All),
            Raw::Star(s) => Err(serde::de::Error::custom(format!(
                "namespaces must be \"*\" or a list of names, not {s:?}"
            ))),
            Raw::List(set) => Ok(Namespaces::Only(set)),
        }
    }
}

impl utoipa::PartialSchema for Namespaces {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["*"])),
            )
            .item(
                ArrayBuilder::new().min_items(Some(1)).items(
                    ObjectBuilder::new()
                        .schema_type(Type::String)
                        .pattern(Some(crate::NAME_PATTERN)),
                ),
            )
            .description(Some(
                "`\"*\"` for every namespace, or a list of namespace names",
            ))
            .into()
    }
}

impl ToSchema for Namespaces {}

/// An API key as stored and listed: its digest and a display prefix, never
/// the secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct KeyRecord {
    /// `key-...`: how the key is named in the API, the audit log and logs.
    pub id: String,
    pub name: String,
    pub role: Role,
    pub namespaces: Namespaces,
    /// The first characters of the secret (`ign_AbCd1234`), to recognize it.
    pub prefix: String,
    /// SHA-256 of the secret, hex. Never leaves the server.
    #[serde(skip)]
    pub digest: String,
    pub created_at_ms: i64,
    pub expires_at_ms: Option<i64>,
    pub last_used_at_ms: Option<i64>,
    pub revoked_at_ms: Option<i64>,
}

impl KeyRecord {
    /// Usable at `now_ms`: not revoked, not expired.
    pub fn is_active(&self, now_ms: i64) -> bool {
        self.revoked_at_ms.is_none() && self.expires_at_ms.is_none_or(|e| now_ms < e)
    }
}

/// SigV4 credentials of an API key (the AWS-compatible API). The secret is
/// never stored: the server derives it from its signing secret and the
/// access key id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AwsCredentialRecord {
    /// `AKIG...`, 20 characters.
    pub access_key_id: String,
    /// The API key whose role and namespaces the credentials carry.
    pub key_id: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// A console session, as stored (the cookie's value only as a digest).
#[derive(Debug, Clone, PartialEq)]
pub struct SessionRecord {
    /// SHA-256 of the cookie's value, hex.
    pub digest: String,
    pub key_id: String,
    /// The token unsafe requests carry in `X-Ignis-Csrf`.
    pub csrf: String,
    pub created_at_ms: i64,
    pub last_seen_ms: i64,
    /// Absolute expiry.
    pub expires_at_ms: i64,
}

/// One management action, as `GET /api/v1/audit` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct AuditEntry {
    pub at_ms: i64,
    /// The key that acted (`null`: no key, e.g. a failed login).
    pub key_id: Option<String>,
    pub key_name: Option<String>,
    /// `function.create`, `key.revoke`, `session.login`, ...
    pub action: String,
    /// What it acted on: `default/hello`, `key-...`, a namespace.
    pub target: String,
    /// `ok`, or the error type that ended it (`Forbidden`, `Conflict`, ...).
    pub outcome: String,
}

/// A namespace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NamespaceInfo {
    pub name: String,
    pub created_at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_json() {
        let all: Namespaces = serde_json::from_str("\"*\"").unwrap();
        assert_eq!(all, Namespaces::All);
        let some: Namespaces = serde_json::from_str("[\"a\",\"b\"]").unwrap();
        assert!(some.contains("a") && !some.contains("c"));
        assert_eq!(serde_json::to_string(&some).unwrap(), "[\"a\",\"b\"]");
        assert_eq!(serde_json::to_string(&all).unwrap(), "\"*\"");
        assert!(serde_json::from_str::<Namespaces>("\"a\"").is_err());
    }
}
