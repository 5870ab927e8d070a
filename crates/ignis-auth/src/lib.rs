//! Identity and access of ignis (docs/security.md).
//!
//! - [`key`]: the API key format (`ign_…` with a checksum), digests.
//! - [`authorize()`]: the one decision, from (principal, action, resource).
//! - [`Auth`]: keys and console sessions, cached in memory over the store
//!   so that no request waits for SQLite; last-used and last-seen times are
//!   written off the request path, coalesced; the first start's admin key;
//!   the failed-authentication limiter.

pub mod authorize;
pub mod aws;
pub mod key;
mod limiter;
pub mod sigv4;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::Path;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use ignis_core::auth::{
    AuditEntry, AwsCredentialRecord, KeyRecord, Namespaces, Role, SessionRecord,
};
use ignis_store::{Store, StoreError};
use subtle::ConstantTimeEq;

pub use authorize::{authorize, sees_secrets, Action, Decision, Principal, Resource, Via};
pub use key::Secret;
pub use limiter::FailureLimiter;

/// The time, in Unix milliseconds. Injectable so that expiries can be
/// tested without waiting.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        ignis_core::now_ms()
    }
}

/// A clock tests move by hand.
#[derive(Debug, Default)]
pub struct ManualClock(pub AtomicI64);

impl ManualClock {
    pub fn new(ms: i64) -> Self {
        Self(AtomicI64::new(ms))
    }
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Settings of authentication.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `false`: every request is an admin (`--no-auth`, loopback only).
    pub enabled: bool,
    /// A console session ends after this long without a request.
    pub session_idle: Duration,
    /// ... and this long after the login, whatever happens.
    pub session_absolute: Duration,
    /// Failed authentications allowed at once per client address...
    pub fail_burst: u32,
    /// ... and per minute after that.
    pub fail_per_minute: u32,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            session_idle: Duration::from_secs(12 * 3600),
            session_absolute: Duration::from_secs(7 * 86_400),
            fail_burst: 20,
            fail_per_minute: 20,
        }
    }
}

/// Why a request is not authenticated, or a key operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("no credentials")]
    Missing,
    #[error("malformed key: {0}")]
    Malformed(#[from] key::FormatError),
    #[error("unknown key")]
    Unknown,
    #[error("expired key")]
    Expired,
    #[error("revoked key")]
    Revoked,
    #[error("no such session, or it expired")]
    SessionExpired,
    #[error("too many failed authentications from this address")]
    RateLimited { retry_after_s: u64 },
    #[error("{0}")]
    Invalid(String),
    #[error("that is the last active admin key: create another admin key first")]
    LastAdmin,
    #[error("no such key")]
    NoSuchKey,
    #[error("no such AWS access key id")]
    NoSuchCredential,
    #[error("SigV4 credentials are not set up on this server")]
    NoSigningSecret,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no randomness: {0}")]
    Random(String),
}

impl AuthError {
    /// Whether this is a failed authentication (401), as opposed to a
    /// refused or failed operation.
    pub fn is_unauthenticated(&self) -> bool {
        matches!(
            self,
            AuthError::Missing
                | AuthError::Malformed(_)
                | AuthError::Unknown
                | AuthError::Expired
                | AuthError::Revoked
                | AuthError::SessionExpired
        )
    }
}

impl From<getrandom::Error> for AuthError {
    fn from(e: getrandom::Error) -> Self {
        AuthError::Random(e.to_string())
    }
}

/// A new console session.
pub struct NewSession {
    /// The cookie's value (shown to the browser only).
    pub cookie: String,
    pub csrf: String,
    pub expires_at_ms: i64,
}

/// What a key creation asks for.
#[derive(Debug, Clone)]
pub struct KeySpec {
    pub name: String,
    pub role: Role,
    pub namespaces: Namespaces,
    pub expires_at_ms: Option<i64>,
}

#[derive(Default)]
struct Keys {
    by_digest: HashMap<String, KeyRecord>,
}

pub struct Auth {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    config: AuthConfig,
    keys: RwLock<Keys>,
    sessions: RwLock<HashMap<String, SessionRecord>>,
    /// Key id → last use, not yet written.
    used: Mutex<HashMap<String, i64>>,
    /// Session digest → last request, not yet written.
    seen: Mutex<HashMap<String, i64>>,
    limiter: FailureLimiter,
    /// SigV4 credentials by access key id.
    aws: RwLock<HashMap<String, AwsCredentialRecord>>,
    signing: RwLock<Option<aws::SigningSecret>>,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}
fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Most characters in a key's name.
const MAX_KEY_NAME: usize = 100;

impl Auth {
    /// Loads keys and live sessions from the store.
    pub async fn load(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        config: AuthConfig,
    ) -> Result<Arc<Self>, AuthError> {
        let now = clock.now_ms();
        let keys = store.list_keys().await?;
        let sessions = store.list_sessions(now).await?;
        let aws = store.list_aws_credentials().await?;
        let limiter = FailureLimiter::new(config.fail_burst, config.fail_per_minute);
        Ok(Arc::new(Self {
            aws: RwLock::new(
                aws.into_iter()
                    .map(|c| (c.access_key_id.clone(), c))
                    .collect(),
            ),
            signing: RwLock::new(None),
            keys: RwLock::new(Keys {
                by_digest: keys.into_iter().map(|k| (k.digest.clone(), k)).collect(),
            }),
            sessions: RwLock::new(
                sessions
                    .into_iter()
                    .map(|s| (s.digest.clone(), s))
                    .collect(),
            ),
            store,
            clock,
            config,
            used: Mutex::default(),
            seen: Mutex::default(),
            limiter,
        }))
    }

    pub fn enabled(&self) -> bool {
        self.config.enabled
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Writes last-used and last-seen times every `every` until `self` is
    /// dropped.
    pub fn spawn_flusher(self: &Arc<Self>, every: Duration) {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let Some(auth) = weak.upgrade() else { return };
                auth.flush().await;
            }
        });
    }

    /// Writes what was used since the last flush.
    pub async fn flush(&self) {
        let used: Vec<(String, i64)> = lock(&self.used).drain().collect();
        if !used.is_empty() {
            if let Err(e) = self.store.touch_keys(&used).await {
                tracing::warn!(error = %e, "could not record when keys were last used");
            }
        }
        let seen: Vec<(String, i64)> = lock(&self.seen).drain().collect();
        if !seen.is_empty() {
            if let Err(e) = self.store.touch_sessions(&seen).await {
                tracing::warn!(error = %e, "could not record session activity");
            }
        }
    }

    fn principal(k: &KeyRecord, via: Via) -> Principal {
        Principal {
            key_id: k.id.clone(),
            key_name: k.name.clone(),
            role: k.role,
            namespaces: k.namespaces.clone(),
            via,
        }
    }

    /// Refused while `ip` has too many failed attempts.
    pub fn check_rate(&self, ip: Option<IpAddr>) -> Result<(), AuthError> {
        match ip {
            Some(ip) => self
                .limiter
                .check(ip, self.now_ms())
                .map_err(|retry_after_s| AuthError::RateLimited { retry_after_s }),
            None => Ok(()),
        }
    }

    /// Counts a failed authentication of `ip`.
    pub fn failed(&self, ip: Option<IpAddr>) {
        if let Some(ip) = ip {
            self.limiter.fail(ip, self.now_ms());
        }
    }

    /// The key's record, if `secret` is an active key.
    fn key_for(&self, secret: &Secret) -> Result<KeyRecord, AuthError> {
        let digest = secret.digest();
        let keys = read(&self.keys);
        let record = keys.by_digest.get(&digest).ok_or(AuthError::Unknown)?;
        // The map lookup is by a digest the caller cannot steer; the final
        // comparison is constant-time anyway.
        if !bool::from(record.digest.as_bytes().ct_eq(digest.as_bytes())) {
            return Err(AuthError::Unknown);
        }
        let now = self.now_ms();
        if record.revoked_at_ms.is_some() {
            return Err(AuthError::Revoked);
        }
        if !record.is_active(now) {
            return Err(AuthError::Expired);
        }
        Ok(record.clone())
    }

    /// A `Bearer` key.
    pub fn authenticate_key(&self, presented: &str) -> Result<Principal, AuthError> {
        let secret = Secret::parse(presented)?;
        let record = self.key_for(&secret)?;
        lock(&self.used).insert(record.id.clone(), self.now_ms());
        Ok(Self::principal(&record, Via::Key))
    }

    /// The key record of an active key by id (SigV4 derives from it).
    pub fn active_key(&self, id: &str) -> Option<KeyRecord> {
        let now = self.now_ms();
        read(&self.keys)
            .by_digest
            .values()
            .find(|k| k.id == id && k.is_active(now))
            .cloned()
    }

    /// Marks a key used now (for SigV4 requests).
    pub fn note_used(&self, id: &str) {
        lock(&self.used).insert(id.to_string(), self.now_ms());
    }

    pub fn principal_of(&self, record: &KeyRecord) -> Principal {
        Self::principal(record, Via::Key)
    }

    /// A session cookie's value: the principal and the session's CSRF token.
    pub fn authenticate_session(&self, cookie: &str) -> Result<(Principal, String), AuthError> {
        let digest = key::digest_hex(cookie.as_bytes());
        let now = self.now_ms();
        let idle = self.config.session_idle.as_millis() as i64;
        let (key_id, csrf) = {
            let mut sessions = write(&self.sessions);
            let Some(s) = sessions.get_mut(&digest) else {
                return Err(AuthError::SessionExpired);
            };
            if !bool::from(s.digest.as_bytes().ct_eq(digest.as_bytes())) {
                return Err(AuthError::SessionExpired);
            }
            if now >= s.expires_at_ms || now - s.last_seen_ms >= idle {
                sessions.remove(&digest);
                return Err(AuthError::SessionExpired);
            }
            s.last_seen_ms = now;
            (s.key_id.clone(), s.csrf.clone())
        };
        let record = self.active_key(&key_id).ok_or(AuthError::SessionExpired)?;
        lock(&self.seen).insert(digest, now);
        lock(&self.used).insert(record.id.clone(), now);
        Ok((Self::principal(&record, Via::Session), csrf))
    }

    /// Opens a console session for a key (already authenticated).
    pub async fn create_session(&self, principal: &Principal) -> Result<NewSession, AuthError> {
        let cookie = key::random_token(32)?;
        let csrf = key::random_token(16)?;
        let now = self.now_ms();
        let record = SessionRecord {
            digest: key::digest_hex(cookie.as_bytes()),
            key_id: principal.key_id.clone(),
            csrf: csrf.clone(),
            created_at_ms: now,
            last_seen_ms: now,
            expires_at_ms: now + self.config.session_absolute.as_millis() as i64,
        };
        self.store.insert_session(&record).await?;
        let expires_at_ms = record.expires_at_ms;
        write(&self.sessions).insert(record.digest.clone(), record);
        Ok(NewSession {
            cookie,
            csrf,
            expires_at_ms,
        })
    }

    /// Ends a session (logout).
    pub async fn end_session(&self, cookie: &str) -> Result<(), AuthError> {
        let digest = key::digest_hex(cookie.as_bytes());
        write(&self.sessions).remove(&digest);
        lock(&self.seen).remove(&digest);
        self.store.delete_session(&digest).await?;
        Ok(())
    }

    /// Creates a key; the secret is returned once and never stored.
    pub async fn create_key(&self, spec: KeySpec) -> Result<(Secret, KeyRecord), AuthError> {
        self.create_key_with(spec, None).await
    }

    async fn create_key_with(
        &self,
        spec: KeySpec,
        secret: Option<Secret>,
    ) -> Result<(Secret, KeyRecord), AuthError> {
        let name = spec.name.trim().to_string();
        // The length as given: what the OpenAPI document's `maxLength` counts.
        if name.is_empty() || spec.name.chars().count() > MAX_KEY_NAME {
            return Err(AuthError::Invalid(format!(
                "`name` must have 1 to {MAX_KEY_NAME} characters"
            )));
        }
        if name.chars().any(char::is_control) {
            return Err(AuthError::Invalid(
                "`name` must not hold control characters".into(),
            ));
        }
        if let Namespaces::Only(set) = &spec.namespaces {
            if set.is_empty() {
                return Err(AuthError::Invalid(
                    "`namespaces` must be \"*\" or name at least one namespace".into(),
                ));
            }
            if spec.role == Role::Admin {
                return Err(AuthError::Invalid(
                    "an admin key applies to every namespace (`\"namespaces\": \"*\"`)".into(),
                ));
            }
            for ns in set {
                ignis_core::validate_namespace(ns).map_err(|e| AuthError::Invalid(e.message))?;
            }
        }
        let now = self.now_ms();
        if spec.expires_at_ms.is_some_and(|e| e <= now) {
            return Err(AuthError::Invalid("the expiry is in the past".into()));
        }
        let secret = match secret {
            Some(s) => s,
            None => Secret::generate()?,
        };
        let record = KeyRecord {
            id: format!("key-{}", key::random_token(8)?),
            name,
            role: spec.role,
            namespaces: spec.namespaces,
            prefix: secret.display_prefix(),
            digest: secret.digest(),
            created_at_ms: now,
            expires_at_ms: spec.expires_at_ms,
            last_used_at_ms: None,
            revoked_at_ms: None,
        };
        self.store.insert_key(&record).await?;
        write(&self.keys)
            .by_digest
            .insert(record.digest.clone(), record.clone());
        Ok((secret, record))
    }

    /// Every key, newest last, with last-used times not yet written.
    pub fn list_keys(&self) -> Vec<KeyRecord> {
        let used = lock(&self.used).clone();
        let mut keys: Vec<KeyRecord> = read(&self.keys)
            .by_digest
            .values()
            .cloned()
            .map(|mut k| {
                if let Some(at) = used.get(&k.id) {
                    k.last_used_at_ms = Some(k.last_used_at_ms.unwrap_or(0).max(*at));
                }
                k
            })
            .collect();
        keys.sort_by(|a, b| (a.created_at_ms, &a.id).cmp(&(b.created_at_ms, &b.id)));
        keys
    }

    /// Revokes a key and ends its sessions. The last active admin key
    /// cannot be revoked (nobody could manage keys afterwards).
    pub async fn revoke_key(&self, id: &str) -> Result<KeyRecord, AuthError> {
        let now = self.now_ms();
        let record = {
            let keys = read(&self.keys);
            let record = keys
                .by_digest
                .values()
                .find(|k| k.id == id)
                .cloned()
                .ok_or(AuthError::NoSuchKey)?;
            if record.role == Role::Admin && record.is_active(now) {
                let admins = keys
                    .by_digest
                    .values()
                    .filter(|k| k.role == Role::Admin && k.is_active(now))
                    .count();
                if admins <= 1 {
                    return Err(AuthError::LastAdmin);
                }
            }
            record
        };
        if record.revoked_at_ms.is_some() {
            return Ok(record);
        }
        self.store.revoke_key(id, now).await?;
        let mut revoked = record.clone();
        revoked.revoked_at_ms = Some(now);
        write(&self.keys)
            .by_digest
            .insert(revoked.digest.clone(), revoked.clone());
        write(&self.sessions).retain(|_, s| s.key_id != id);
        Ok(revoked)
    }

    /// Sets the secret SigV4 secrets are derived from (see [`aws`]).
    pub fn set_signing_secret(&self, secret: aws::SigningSecret) {
        *write(&self.signing) = Some(secret);
    }

    /// New SigV4 credentials for the active key `key_id`: the record and
    /// the secret access key (shown once; derived again when verifying).
    pub async fn create_aws_credential(
        &self,
        key_id: &str,
    ) -> Result<(AwsCredentialRecord, String), AuthError> {
        if self.active_key(key_id).is_none() {
            return Err(AuthError::NoSuchKey);
        }
        let signing = read(&self.signing)
            .clone()
            .ok_or(AuthError::NoSigningSecret)?;
        let record = AwsCredentialRecord {
            access_key_id: aws::new_access_key_id()?,
            key_id: key_id.to_string(),
            created_at_ms: self.now_ms(),
            revoked_at_ms: None,
        };
        self.store.insert_aws_credential(&record).await?;
        let secret = signing.secret_of(&record.access_key_id);
        write(&self.aws).insert(record.access_key_id.clone(), record.clone());
        Ok((record, secret))
    }

    /// The SigV4 credentials of a key (revoked ones included).
    pub fn aws_credentials_of(&self, key_id: &str) -> Vec<AwsCredentialRecord> {
        let mut v: Vec<AwsCredentialRecord> = read(&self.aws)
            .values()
            .filter(|c| c.key_id == key_id)
            .cloned()
            .collect();
        v.sort_by(|a, b| {
            (a.created_at_ms, &a.access_key_id).cmp(&(b.created_at_ms, &b.access_key_id))
        });
        v
    }

    /// One credential by access key id.
    pub fn aws_credential(&self, access_key_id: &str) -> Option<AwsCredentialRecord> {
        read(&self.aws).get(access_key_id).cloned()
    }

    pub async fn revoke_aws_credential(
        &self,
        access_key_id: &str,
    ) -> Result<AwsCredentialRecord, AuthError> {
        let now = self.now_ms();
        if !self.store.revoke_aws_credential(access_key_id, now).await? {
            return Err(AuthError::NoSuchCredential);
        }
        let mut all = write(&self.aws);
        let c = all
            .get_mut(access_key_id)
            .ok_or(AuthError::NoSuchCredential)?;
        c.revoked_at_ms = Some(now);
        Ok(c.clone())
    }

    /// For the SigV4 verifier: the secret of an active access key id and
    /// the principal of its active key.
    pub fn aws_lookup(&self, access_key_id: &str) -> Option<(String, Principal)> {
        let signing = read(&self.signing).clone()?;
        let credential = read(&self.aws).get(access_key_id).cloned()?;
        if credential.revoked_at_ms.is_some() {
            return None;
        }
        let key = self.active_key(&credential.key_id)?;
        Some((
            signing.secret_of(access_key_id),
            Self::principal(&key, Via::Sigv4),
        ))
    }

    /// Whether any key exists (active or not).
    pub fn has_keys(&self) -> bool {
        !read(&self.keys).by_digest.is_empty()
    }

    /// First start: when no key exists, creates an admin key (from
    /// `supplied`, e.g. `IGNIS_ADMIN_KEY`, or a new one) and writes a
    /// generated one to `DATA_DIR/admin.key` (mode 0600). A supplied key
    /// that is not known yet is added as an admin key even when others
    /// exist (deployments that set it keep working). Returns a generated
    /// key, to be shown once.
    pub async fn bootstrap(
        &self,
        data_dir: &Path,
        supplied: Option<&str>,
    ) -> Result<Option<Secret>, AuthError> {
        if let Some(s) = supplied {
            let secret = Secret::parse(s)?;
            match self.key_for(&secret) {
                Ok(_) => {}
                Err(AuthError::Unknown) => {
                    self.create_key_with(
                        KeySpec {
                            name: "admin (IGNIS_ADMIN_KEY)".into(),
                            role: Role::Admin,
                            namespaces: Namespaces::All,
                            expires_at_ms: None,
                        },
                        Some(secret),
                    )
                    .await?;
                    tracing::info!("admin key from IGNIS_ADMIN_KEY registered");
                }
                Err(e) => {
                    return Err(AuthError::Invalid(format!(
                        "IGNIS_ADMIN_KEY is not usable: {e}"
                    )))
                }
            }
            return Ok(None);
        }
        if self.has_keys() {
            return Ok(None);
        }
        let (secret, _) = self
            .create_key(KeySpec {
                name: "admin (first start)".into(),
                role: Role::Admin,
                namespaces: Namespaces::All,
                expires_at_ms: None,
            })
            .await?;
        write_key_file(&data_dir.join("admin.key"), &secret).map_err(StoreError::Io)?;
        Ok(Some(secret))
    }

    /// Appends to the audit log; a failure is logged, never the caller's.
    pub async fn audit(&self, who: Option<&Principal>, action: &str, target: &str, outcome: &str) {
        let entry = AuditEntry {
            at_ms: self.now_ms(),
            key_id: who.map(|p| p.key_id.clone()),
            key_name: who.map(|p| p.key_name.clone()),
            action: action.to_string(),
            target: target.to_string(),
            outcome: outcome.to_string(),
        };
        if let Err(e) = self.store.append_audit(&entry).await {
            tracing::error!(error = %e, action, target, "could not write the audit log");
        }
    }
}

/// Writes a key to `path`, readable by its owner only.
pub fn write_key_file(path: &Path, secret: &Secret) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("key.tmp");
    {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(secret.expose().as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ignis_store::SqliteStore;

    async fn auth(clock: Arc<ManualClock>) -> (tempfile::TempDir, Arc<Auth>) {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let auth = Auth::load(store, clock, AuthConfig::default())
            .await
            .unwrap();
        (dir, auth)
    }

    fn spec(role: Role) -> KeySpec {
        KeySpec {
            name: "k".into(),
            role,
            namespaces: Namespaces::All,
            expires_at_ms: None,
        }
    }

    #[tokio::test]
    async fn keys_authenticate_until_revoked_or_expired() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let (_dir, auth) = auth(clock.clone()).await;
        let (admin, _) = auth.create_key(spec(Role::Admin)).await.unwrap();
        let (dev, dev_rec) = auth
            .create_key(KeySpec {
                expires_at_ms: Some(1_000_000 + 60_000),
                ..spec(Role::Developer)
            })
            .await
            .unwrap();
        assert_eq!(
            auth.authenticate_key(dev.expose()).unwrap().role,
            Role::Developer
        );
        let other = Secret::generate().unwrap();
        assert!(matches!(
            auth.authenticate_key(other.expose()),
            Err(AuthError::Unknown)
        ));
        assert!(matches!(
            auth.authenticate_key("ign_short"),
            Err(AuthError::Malformed(_))
        ));
        clock.advance(60_000);
        assert!(matches!(
            auth.authenticate_key(dev.expose()),
            Err(AuthError::Expired)
        ));
        // The last admin key cannot go; another admin makes it possible.
        let admin_id = auth.authenticate_key(admin.expose()).unwrap().key_id;
        assert!(matches!(
            auth.revoke_key(&admin_id).await,
            Err(AuthError::LastAdmin)
        ));
        auth.create_key(spec(Role::Admin)).await.unwrap();
        auth.revoke_key(&admin_id).await.unwrap();
        assert!(matches!(
            auth.authenticate_key(admin.expose()),
            Err(AuthError::Revoked)
        ));
        // Last use is written off the request path, in one go.
        auth.flush().await;
        let stored = auth.store.list_keys().await.unwrap();
        let admin_row = stored.iter().find(|k| k.id == admin_id).unwrap();
        assert!(admin_row.last_used_at_ms.is_some());
        assert!(stored
            .iter()
            .all(|k| k.id != dev_rec.id || k.last_used_at_ms.is_some()));
    }

    #[tokio::test]
    async fn sessions_expire_when_idle_and_at_their_end() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let (_dir, auth) = auth(clock.clone()).await;
        let (key, _) = auth.create_key(spec(Role::Viewer)).await.unwrap();
        let p = auth.authenticate_key(key.expose()).unwrap();
        let s = auth.create_session(&p).await.unwrap();
        let (sp, csrf) = auth.authenticate_session(&s.cookie).unwrap();
        assert_eq!((sp.role, sp.via), (Role::Viewer, Via::Session));
        assert_eq!(csrf, s.csrf);
        // Activity keeps it alive...
        for _ in 0..3 {
            clock.advance(11 * 3600 * 1000);
            auth.authenticate_session(&s.cookie).unwrap();
        }
        // ... 12 idle hours end it.
        clock.advance(12 * 3600 * 1000);
        assert!(auth.authenticate_session(&s.cookie).is_err());
        // The absolute limit ends even a busy one.
        let s2 = auth.create_session(&p).await.unwrap();
        for _ in 0..16 {
            clock.advance(11 * 3600 * 1000);
            let _ = auth.authenticate_session(&s2.cookie);
        }
        assert!(auth.authenticate_session(&s2.cookie).is_err());
        // Logout.
        let s3 = auth.create_session(&p).await.unwrap();
        auth.end_session(&s3.cookie).await.unwrap();
        assert!(auth.authenticate_session(&s3.cookie).is_err());
    }

    #[tokio::test]
    async fn bootstrap_once_and_the_key_file_is_private() {
        use std::os::unix::fs::PermissionsExt;
        let clock = Arc::new(ManualClock::new(1_000_000));
        let (dir, auth) = auth(clock).await;
        let secret = auth.bootstrap(dir.path(), None).await.unwrap().unwrap();
        let file = dir.path().join("admin.key");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_to_string(&file).unwrap().trim(),
            secret.expose()
        );
        assert!(auth.bootstrap(dir.path(), None).await.unwrap().is_none());
        assert_eq!(auth.list_keys().len(), 1);
        // A supplied key is registered, once.
        let supplied = Secret::generate().unwrap();
        assert!(auth
            .bootstrap(dir.path(), Some(supplied.expose()))
            .await
            .unwrap()
            .is_none());
        auth.bootstrap(dir.path(), Some(supplied.expose()))
            .await
            .unwrap();
        assert_eq!(auth.list_keys().len(), 2);
        assert_eq!(
            auth.authenticate_key(supplied.expose()).unwrap().role,
            Role::Admin
        );
    }

    #[tokio::test]
    async fn key_specs_are_validated() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let (_dir, auth) = auth(clock).await;
        for bad in [
            KeySpec {
                name: "".into(),
                ..spec(Role::Viewer)
            },
            KeySpec {
                namespaces: Namespaces::Only(Default::default()),
                ..spec(Role::Viewer)
            },
            KeySpec {
                namespaces: Namespaces::Only(["a".to_string()].into()),
                ..spec(Role::Admin)
            },
            KeySpec {
                namespaces: Namespaces::Only(["Bad NS".to_string()].into()),
                ..spec(Role::Viewer)
            },
            KeySpec {
                expires_at_ms: Some(1),
                ..spec(Role::Viewer)
            },
        ] {
            assert!(
                matches!(
                    auth.create_key(bad.clone()).await,
                    Err(AuthError::Invalid(_))
                ),
                "{bad:?} accepted"
            );
        }
    }
}
