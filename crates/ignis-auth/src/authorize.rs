//! The authorization decision: a pure function from who asks, what they
//! want to do and on what, to allow or deny. Every handler's access goes
//! through [`authorize`]; handlers never look at roles themselves.

use ignis_core::auth::{Namespaces, Role};
use serde::Serialize;

/// What a request wants to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// List and read functions, their code and versions.
    ReadFunctions,
    /// Create, update, delete functions; pre-warm their sandboxes.
    WriteFunctions,
    /// Call a function (invoke API, private HTTP triggers).
    Invoke,
    /// Read invocation records and their logs.
    ReadLogs,
    /// Read metrics: summaries, series, the live stream, Prometheus.
    ReadMetrics,
    /// Read pools and sandboxes.
    ReadSystem,
    /// List the namespaces one may use.
    ReadNamespaces,
    /// Create and delete namespaces.
    ManageNamespaces,
    /// Create, list and revoke API keys.
    ManageKeys,
    /// Read the audit log.
    ReadAudit,
    /// Who am I; log in and out of the console.
    Session,
}

impl Action {
    pub const ALL: [Action; 11] = [
        Action::ReadFunctions,
        Action::WriteFunctions,
        Action::Invoke,
        Action::ReadLogs,
        Action::ReadMetrics,
        Action::ReadSystem,
        Action::ReadNamespaces,
        Action::ManageNamespaces,
        Action::ManageKeys,
        Action::ReadAudit,
        Action::Session,
    ];
}

/// What an action is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resource<'a> {
    /// Something of one namespace (a function, its records).
    Namespace(&'a str),
    /// A view across namespaces, filtered to the caller's (the summary, the
    /// live stream, pools): any namespace scope may ask.
    Visible,
    /// The whole server (keys, namespaces, the audit log, Prometheus):
    /// only keys that apply to every namespace.
    System,
}

/// Who is asking.
#[derive(Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub key_id: String,
    pub key_name: String,
    pub role: Role,
    pub namespaces: Namespaces,
    /// How the request proved it.
    pub via: Via,
}

impl std::fmt::Debug for Principal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Principal")
            .field("key_id", &self.key_id)
            .field("role", &self.role)
            .field("via", &self.via)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// `Authorization: Bearer <key>`.
    Key,
    /// AWS Signature Version 4 with credentials of a key.
    Sigv4,
    /// The console's session cookie.
    Session,
    /// Authentication is off (`--no-auth`, loopback only).
    Disabled,
}

impl Principal {
    /// The principal of every request when authentication is off.
    pub fn auth_disabled() -> Self {
        Self {
            key_id: "auth-off".into(),
            key_name: "authentication disabled".into(),
            role: Role::Admin,
            namespaces: Namespaces::All,
            via: Via::Disabled,
        }
    }

    /// Whether this principal may see namespace `ns` at all.
    pub fn sees(&self, ns: &str) -> bool {
        self.namespaces.contains(ns)
    }
}

/// The decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// Denied, with a reason for the caller (never whether something exists).
    Deny(&'static str),
}

/// Which roles may take which action (on a resource their namespaces cover).
pub fn role_allows(role: Role, action: Action) -> bool {
    use Action::*;
    match role {
        Role::Admin => true,
        Role::Developer => matches!(
            action,
            ReadFunctions
                | WriteFunctions
                | Invoke
                | ReadLogs
                | ReadMetrics
                | ReadSystem
                | ReadNamespaces
                | Session
        ),
        Role::Viewer => matches!(
            action,
            ReadFunctions | ReadLogs | ReadMetrics | ReadSystem | ReadNamespaces | Session
        ),
        Role::Invoker => matches!(action, Invoke | ReadNamespaces | Session),
    }
}

/// The one authorization decision.
pub fn authorize(p: &Principal, action: Action, resource: Resource<'_>) -> Decision {
    if !role_allows(p.role, action) {
        return Decision::Deny("this key's role does not allow it");
    }
    match resource {
        Resource::Namespace(ns) if !p.sees(ns) => {
            Decision::Deny("this key does not apply to that namespace")
        }
        Resource::System if !p.namespaces.is_all() => {
            Decision::Deny("only keys for every namespace may do this")
        }
        _ => Decision::Allow,
    }
}

/// Whether `p` may see environment variable values (viewers see names
/// with the values masked).
pub fn sees_secrets(p: &Principal) -> bool {
    matches!(p.role, Role::Admin | Role::Developer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(role: Role, namespaces: Namespaces) -> Principal {
        Principal {
            key_id: "key-x".into(),
            key_name: "x".into(),
            role,
            namespaces,
            via: Via::Key,
        }
    }

    /// Every role × action, on a namespace the key covers: exactly the
    /// documented table (docs/security.md).
    #[test]
    fn the_role_table() {
        use Action::*;
        let expected: &[(Role, &[Action])] = &[
            (Role::Admin, &Action::ALL),
            (
                Role::Developer,
                &[
                    ReadFunctions,
                    WriteFunctions,
                    Invoke,
                    ReadLogs,
                    ReadMetrics,
                    ReadSystem,
                    ReadNamespaces,
                    Session,
                ],
            ),
            (
                Role::Viewer,
                &[
                    ReadFunctions,
                    ReadLogs,
                    ReadMetrics,
                    ReadSystem,
                    ReadNamespaces,
                    Session,
                ],
            ),
            (Role::Invoker, &[Invoke, ReadNamespaces, Session]),
        ];
        for (role, allowed) in expected {
            let p = principal(*role, Namespaces::All);
            for action in Action::ALL {
                let want = allowed.contains(&action);
                let got = authorize(&p, action, Resource::Namespace("default")) == Decision::Allow;
                assert_eq!(got, want, "{role:?} {action:?}");
            }
        }
    }

    #[test]
    fn namespaces_bound_every_role() {
        let only_a = Namespaces::Only(["a".to_string()].into());
        for role in Role::ALL {
            let p = principal(role, only_a.clone());
            for action in Action::ALL {
                assert!(
                    matches!(
                        authorize(&p, action, Resource::Namespace("b")),
                        Decision::Deny(_)
                    ),
                    "{role:?} {action:?} reached namespace b"
                );
                // System-wide things need a key for every namespace.
                assert!(matches!(
                    authorize(&p, action, Resource::System),
                    Decision::Deny(_)
                ));
                let visible = authorize(&p, action, Resource::Visible) == Decision::Allow;
                assert_eq!(visible, role_allows(role, action));
            }
        }
    }

    #[test]
    fn secrets_only_for_writers() {
        assert!(sees_secrets(&principal(Role::Admin, Namespaces::All)));
        assert!(sees_secrets(&principal(Role::Developer, Namespaces::All)));
        assert!(!sees_secrets(&principal(Role::Viewer, Namespaces::All)));
        assert!(!sees_secrets(&principal(Role::Invoker, Namespaces::All)));
    }
}
