//! SigV4 credentials for API keys: an access key id (`AKIG…`) and a secret
//! access key per credential, for the AWS-compatible API.
//!
//! The secret is never stored. It is `HMAC-SHA256(signing secret, access
//! key id)`, encoded like an AWS secret (40 characters), where the signing
//! secret is 32 random bytes kept in `DATA_DIR/aws-signing.key` (mode
//! 0600), made on the first start. The store keeps only which API key an
//! access key id belongs to; the key's role, namespaces, expiry and
//! revocation apply to requests signed with it.

use std::path::Path;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// File of the signing secret, in the data directory.
pub const SIGNING_FILE: &str = "aws-signing.key";

/// The server's signing secret.
#[derive(Clone)]
pub struct SigningSecret([u8; 32]);

impl std::fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningSecret(…)")
    }
}

impl SigningSecret {
    /// Reads `DATA_DIR/aws-signing.key`, or makes it (mode 0600).
    pub fn load_or_create(data_dir: &Path) -> std::io::Result<Self> {
        let path = data_dir.join(SIGNING_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => {
                let bytes = hex::decode(text.trim())
                    .ok()
                    .and_then(|b| <[u8; 32]>::try_from(b).ok())
                    .ok_or_else(|| {
                        std::io::Error::new(
                            std::io::ErrorKind::InvalidData,
                            format!("{} does not hold 32 bytes in hex", path.display()),
                        )
                    })?;
                Ok(Self(bytes))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                getrandom::getrandom(&mut bytes)
                    .map_err(|e| std::io::Error::other(e.to_string()))?;
                write_private(&path, hex::encode(bytes).as_bytes())?;
                Ok(Self(bytes))
            }
            Err(e) => Err(e),
        }
    }

    /// A fixed secret, for tests.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The secret access key of `access_key_id`.
    pub fn secret_of(&self, access_key_id: &str) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(b"ignis sigv4 secret\0");
        mac.update(access_key_id.as_bytes());
        let digest = mac.finalize().into_bytes();
        // 30 bytes are 40 characters of base64, the length of an AWS secret.
        base64::engine::general_purpose::STANDARD.encode(&digest[..30])
    }
}

/// A new access key id: `AKIG` and 16 characters of base32 (A–Z, 2–7),
/// 20 in all like AWS's.
pub fn new_access_key_id() -> Result<String, getrandom::Error> {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)?;
    let tail: String = bytes
        .iter()
        .map(|b| ALPHABET[(*b as usize) % 32] as char)
        .collect();
    Ok(format!("AKIG{tail}"))
}

fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
        f.write_all(bytes)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn the_secret_is_derived_again_from_the_same_file() {
        let dir = tempfile::tempdir().unwrap();
        let a = SigningSecret::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(SIGNING_FILE))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let b = SigningSecret::load_or_create(dir.path()).unwrap();
        let id = new_access_key_id().unwrap();
        assert_eq!(id.len(), 20);
        assert!(id.starts_with("AKIG"));
        assert_eq!(a.secret_of(&id), b.secret_of(&id));
        assert_eq!(a.secret_of(&id).len(), 40);
        assert_ne!(a.secret_of(&id), a.secret_of(&new_access_key_id().unwrap()));
        // Another server's file gives other secrets.
        let other = tempfile::tempdir().unwrap();
        let c = SigningSecret::load_or_create(other.path()).unwrap();
        assert_ne!(a.secret_of(&id), c.secret_of(&id));
        // A damaged file is an error, not a new secret.
        std::fs::write(dir.path().join(SIGNING_FILE), "not hex").unwrap();
        assert!(SigningSecret::load_or_create(dir.path()).is_err());
    }
}
