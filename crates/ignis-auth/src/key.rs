//! The API key format: `ign_` + 32 random bytes in base62 (43 characters) +
//! a CRC32 of everything before it in base62 (6 characters). The prefix
//! lets secret scanners find leaked keys; the checksum lets a typo or a
//! truncated paste be refused before any lookup. Keys are stored only as a
//! SHA-256 digest.

use sha2::{Digest, Sha256};

pub const PREFIX: &str = "ign_";
const RANDOM_BYTES: usize = 32;
/// base62 digits of a 256-bit number: ceil(256 / log2(62)).
const RANDOM_CHARS: usize = 43;
/// base62 digits of a 32-bit number.
const CHECK_CHARS: usize = 6;
/// Every key has exactly this length.
pub const KEY_LEN: usize = PREFIX.len() + RANDOM_CHARS + CHECK_CHARS;
/// Characters of a key shown to recognize it (`ign_` + 8).
const DISPLAY_CHARS: usize = PREFIX.len() + 8;

const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A key's secret. Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secret({}…)", self.display_prefix())
    }
}

/// Why a string is not a well-formed key (checked before any lookup).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("an ignis key starts with `ign_`")]
    Prefix,
    #[error("an ignis key has {KEY_LEN} characters")]
    Length,
    #[error("an ignis key holds only letters and digits after `ign_`")]
    Charset,
    #[error("the key's checksum does not match (mistyped or truncated)")]
    Checksum,
}

impl Secret {
    /// A new random key.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = [0u8; RANDOM_BYTES];
        getrandom::getrandom(&mut bytes)?;
        let mut s = String::with_capacity(KEY_LEN);
        s.push_str(PREFIX);
        s.push_str(&base62(&bytes, RANDOM_CHARS));
        let check = crc32fast::hash(s.as_bytes());
        s.push_str(&base62(&check.to_be_bytes(), CHECK_CHARS));
        Ok(Self(s))
    }

    /// Checks the format and the checksum.
    pub fn parse(s: &str) -> Result<Self, FormatError> {
        let s = s.trim();
        if !s.starts_with(PREFIX) {
            return Err(FormatError::Prefix);
        }
        if s.len() != KEY_LEN {
            return Err(FormatError::Length);
        }
        if !s[PREFIX.len()..].bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(FormatError::Charset);
        }
        let (body, check) = s.split_at(KEY_LEN - CHECK_CHARS);
        let expected = base62(&crc32fast::hash(body.as_bytes()).to_be_bytes(), CHECK_CHARS);
        if expected != check {
            return Err(FormatError::Checksum);
        }
        Ok(Self(s.to_string()))
    }

    /// The secret itself: to show once, or to send.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the key, hex: what is stored and looked up.
    pub fn digest(&self) -> String {
        digest_hex(self.0.as_bytes())
    }

    /// `ign_` and the next 8 characters: enough to recognize a key in a
    /// list, far too little to guess it (the rest holds ~250 bits).
    pub fn display_prefix(&self) -> String {
        self.0[..DISPLAY_CHARS].to_string()
    }
}

/// SHA-256 of `bytes`, hex.
pub fn digest_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `bytes` as a big-endian number in base62, left-padded to `width` digits.
fn base62(bytes: &[u8], width: usize) -> String {
    let mut n = bytes.to_vec();
    let mut digits = Vec::with_capacity(width);
    while n.iter().any(|b| *b != 0) {
        // Divide the big number by 62, keeping the remainder.
        let mut rem: u32 = 0;
        for b in n.iter_mut() {
            let cur = (rem << 8) | u32::from(*b);
            *b = (cur / 62) as u8;
            rem = cur % 62;
        }
        digits.push(ALPHABET[rem as usize]);
    }
    while digits.len() < width {
        digits.push(b'0');
    }
    digits.reverse();
    String::from_utf8(digits).unwrap_or_default()
}

/// A random token for sessions and CSRF: `bytes` random bytes as hex.
pub fn random_token(bytes: usize) -> Result<String, getrandom::Error> {
    let mut buf = vec![0u8; bytes];
    getrandom::getrandom(&mut buf)?;
    Ok(hex::encode(buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_and_differ() {
        let a = Secret::generate().unwrap();
        let b = Secret::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), KEY_LEN);
        assert_eq!(Secret::parse(a.expose()).unwrap(), a);
        assert!(a.expose().starts_with("ign_"));
        assert_eq!(a.display_prefix().len(), 12);
        assert!(!format!("{a:?}").contains(&a.expose()[12..]));
        assert_eq!(a.digest().len(), 64);
    }

    #[test]
    fn mangled_keys_are_refused_before_any_lookup() {
        let k = Secret::generate().unwrap();
        let s = k.expose();
        assert_eq!(Secret::parse("nope"), Err(FormatError::Prefix));
        assert_eq!(Secret::parse(&s[..s.len() - 1]), Err(FormatError::Length));
        let bad_char = format!("{}-{}", &s[..10], &s[11..]);
        assert_eq!(Secret::parse(&bad_char), Err(FormatError::Charset));
        // One character changed: the checksum catches it.
        let mut typo: Vec<char> = s.chars().collect();
        typo[20] = if typo[20] == 'a' { 'b' } else { 'a' };
        let typo: String = typo.into_iter().collect();
        assert_eq!(Secret::parse(&typo), Err(FormatError::Checksum));
    }

    #[test]
    fn base62_pads_and_encodes() {
        assert_eq!(base62(&[0, 0], 3), "000");
        assert_eq!(base62(&[61], 1), "z");
        assert_eq!(base62(&[62], 2), "10");
        assert_eq!(base62(&[0xff; 32], 43).len(), 43);
    }
}
