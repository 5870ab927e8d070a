//! AWS Signature Version 4, verified on the server, in the flavour of the
//! Lambda API as botocore signs it.
//!
//! What a signature covers ([`canonical_request`]):
//!
//! - the method;
//! - the path **as it arrived, URI-encoded once more** (every byte but the
//!   unreserved `A-Z a-z 0-9 - . _ ~` and `/`): botocore percent-encodes
//!   `FunctionName` into the path (`f1%3A%24LATEST`, a whole ARN) and then
//!   encodes the path again for the canonical request (`f1%253A%2524LATEST`).
//!   Encoding once only (as S3 does) fails every ARN or qualified name;
//! - the query, each key and value decoded and RFC 3986-encoded, sorted by
//!   key then value;
//! - the signed headers, by lowercase name, values trimmed and inner runs
//!   of spaces collapsed, repeated headers joined with `,`;
//! - the SHA-256 of the body, hashed here (Lambda clients do not send
//!   `x-amz-content-sha256`).
//!
//! The string to sign names the time (`X-Amz-Date`) and the credential
//! scope `DATE/REGION/lambda/aws4_request`; the signing key is the HMAC
//! chain `"AWS4" + secret → date → region → service → "aws4_request"`. The
//! request's time may be at most [`MAX_SKEW_S`] from the server's, and the
//! scope's date must be the day of `X-Amz-Date`. Signatures are compared in
//! constant time.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// How far a request's `X-Amz-Date` may be from the server's clock.
pub const MAX_SKEW_S: i64 = 15 * 60;

/// Why a request's signature was not accepted. The Lambda API answers each
/// with a 403 (`UnrecognizedClientException` for an unknown key,
/// `InvalidSignatureException` otherwise) or, for a request that carries no
/// signature at all, `MissingAuthenticationTokenException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigError {
    #[error(
        "the request is not signed: it needs an AWS Signature Version 4 `Authorization` header"
    )]
    Missing,
    #[error("malformed authorization: {0}")]
    Malformed(String),
    #[error("the security token included in the request is invalid: unknown access key id `{0}`")]
    UnknownKey(String),
    #[error("the credential scope is for {0}, not for lambda")]
    WrongService(String),
    #[error("the credential scope's date {scope} is not the day of X-Amz-Date {amz_date}")]
    ScopeDate { scope: String, amz_date: String },
    #[error("signature expired: {amz_date} is more than 15 minutes from the server's time {now}")]
    Skewed { amz_date: String, now: String },
    #[error("the request signature we calculated does not match the signature you provided; check your AWS secret access key and signing method")]
    Mismatch,
}

/// The parsed `Authorization: AWS4-HMAC-SHA256 Credential=..., SignedHeaders=..., Signature=...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    pub access_key_id: String,
    /// `YYYYMMDD`.
    pub date: String,
    pub region: String,
    pub service: String,
    /// Lowercase, in the order given (which must be sorted).
    pub signed_headers: Vec<String>,
    /// 32 bytes.
    pub signature: Vec<u8>,
}

impl Authorization {
    pub fn parse(header: &str) -> Result<Self, SigError> {
        let bad = |m: &str| SigError::Malformed(m.to_string());
        let rest = header
            .trim()
            .strip_prefix("AWS4-HMAC-SHA256")
            .ok_or_else(|| bad("only AWS4-HMAC-SHA256 is supported"))?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| bad("expected Credential=, SignedHeaders= and Signature="))?;
            match k.trim() {
                "Credential" => credential = Some(v.trim()),
                "SignedHeaders" => signed = Some(v.trim()),
                "Signature" => signature = Some(v.trim()),
                other => return Err(bad(&format!("unknown field `{other}`"))),
            }
        }
        let credential = credential.ok_or_else(|| bad("no Credential"))?;
        let signed = signed.ok_or_else(|| bad("no SignedHeaders"))?;
        let signature = signature.ok_or_else(|| bad("no Signature"))?;
        let parts: Vec<&str> = credential.split('/').collect();
        let [key, date, region, service, terminator] = parts[..] else {
            return Err(bad(
                "Credential must be KEY/YYYYMMDD/REGION/SERVICE/aws4_request",
            ));
        };
        if terminator != "aws4_request" {
            return Err(bad("the credential scope must end with aws4_request"));
        }
        if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("the credential scope's date must be YYYYMMDD"));
        }
        if key.is_empty() || region.is_empty() {
            return Err(bad("empty access key id or region"));
        }
        let signed_headers: Vec<String> = signed.split(';').map(str::to_string).collect();
        if signed_headers
            .iter()
            .any(|h| h.is_empty() || *h != h.to_ascii_lowercase())
        {
            return Err(bad(
                "SignedHeaders must be lowercase names separated by `;`",
            ));
        }
        if !signed_headers.windows(2).all(|w| w[0] < w[1]) {
            return Err(bad("SignedHeaders must be sorted and unique"));
        }
        if !signed_headers.iter().any(|h| h == "host") {
            return Err(bad("the host header must be signed"));
        }
        let signature = hex::decode(signature)
            .ok()
            .filter(|s| s.len() == 32)
            .ok_or_else(|| bad("Signature must be 64 hex digits"))?;
        Ok(Self {
            access_key_id: key.to_string(),
            date: date.to_string(),
            region: region.to_string(),
            service: service.to_string(),
            signed_headers,
            signature,
        })
    }

    /// `DATE/REGION/SERVICE/aws4_request`.
    pub fn scope(&self) -> String {
        format!(
            "{}/{}/{}/aws4_request",
            self.date, self.region, self.service
        )
    }
}

/// A request as the verifier needs it: the path and query exactly as they
/// arrived (still percent-encoded), every header, and the body's hash.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    pub method: &'a str,
    pub raw_path: &'a str,
    pub raw_query: &'a str,
    /// Names in any case; a name may repeat.
    pub headers: Vec<(&'a str, &'a [u8])>,
    pub body_sha256: [u8; 32],
}

impl Request<'_> {
    /// The values of header `name`, joined with `,` as the canonical form
    /// wants them; `None` when absent.
    fn header(&self, name: &str) -> Option<String> {
        let values: Vec<String> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| canonical_value(v))
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    }
}

/// A header value trimmed, with inner runs of whitespace as one space.
fn canonical_value(v: &[u8]) -> String {
    String::from_utf8_lossy(v)
        .split_ascii_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The bytes left as they are by URI encoding.
fn unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 percent-encoding of every byte but the unreserved (and `/`
/// when `keep_slash`), with uppercase hex.
pub fn uri_encode(s: &[u8], keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s {
        if unreserved(b) || (keep_slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes `%XX` sequences (and, in queries, `+` is a literal `+`: botocore
/// encodes spaces as `%20`).
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                out.push(h << 4 | l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    out
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// The canonical query: pairs decoded, re-encoded, sorted.
pub fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (
                uri_encode(&percent_decode(k), false),
                uri_encode(&percent_decode(v), false),
            )
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// The canonical URI: the path as received, encoded once more (`/` kept).
pub fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".to_string();
    }
    uri_encode(raw_path.as_bytes(), true)
}

/// The canonical request for `req` and the headers `signed`.
pub fn canonical_request(req: &Request<'_>, signed: &[String]) -> Result<String, SigError> {
    let mut headers = String::new();
    for name in signed {
        let value = req.header(name).ok_or_else(|| {
            SigError::Malformed(format!("signed header `{name}` is not in the request"))
        })?;
        headers.push_str(name);
        headers.push(':');
        headers.push_str(&value);
        headers.push('\n');
    }
    Ok(format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        canonical_uri(req.raw_path),
        canonical_query(req.raw_query),
        headers,
        signed.join(";"),
        hex::encode(req.body_sha256)
    ))
}

fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes a key of any length.
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// The signing key of `secret` for one day, region and service.
pub fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k = hmac(&k, region.as_bytes());
    let k = hmac(&k, service.as_bytes());
    hmac(&k, b"aws4_request")
}

/// The string to sign.
pub fn string_to_sign(amz_date: &str, scope: &str, canonical: &str) -> String {
    format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical.as_bytes()))
    )
}

/// The signature of `req` by `secret`.
pub fn sign(req: &Request<'_>, auth: &Authorization, secret: &str) -> Result<[u8; 32], SigError> {
    let amz_date = req
        .header("x-amz-date")
        .ok_or_else(|| SigError::Malformed("no X-Amz-Date header".into()))?;
    let canonical = canonical_request(req, &auth.signed_headers)?;
    let sts = string_to_sign(&amz_date, &auth.scope(), &canonical);
    let key = signing_key(secret, &auth.date, &auth.region, &auth.service);
    Ok(hmac(&key, sts.as_bytes()))
}

/// `YYYYMMDDTHHMMSSZ` as Unix seconds.
fn parse_amz_date(s: &str) -> Option<i64> {
    chrono::NaiveDateTime::parse_from_str(s, "%Y%m%dT%H%M%SZ")
        .ok()
        .map(|t| t.and_utc().timestamp())
}

/// Verifies `req`: its authorization parses, is for `service`, was made
/// within [`MAX_SKEW_S`] of `now_s`, and is signed by the secret that
/// `secret_of` gives for its access key id (`None`: unknown key). Returns
/// the authorization (the caller maps its key id to a principal).
pub fn verify(
    req: &Request<'_>,
    service: &str,
    now_s: i64,
    secret_of: impl FnOnce(&str) -> Option<String>,
) -> Result<Authorization, SigError> {
    let header = req.header("authorization").ok_or(SigError::Missing)?;
    let auth = Authorization::parse(&header)?;
    if auth.service != service {
        return Err(SigError::WrongService(auth.service));
    }
    let amz_date = req
        .header("x-amz-date")
        .ok_or_else(|| SigError::Malformed("no X-Amz-Date header".into()))?;
    let at = parse_amz_date(&amz_date)
        .ok_or_else(|| SigError::Malformed(format!("bad X-Amz-Date `{amz_date}`")))?;
    if !amz_date.starts_with(&auth.date) {
        return Err(SigError::ScopeDate {
            scope: auth.date,
            amz_date,
        });
    }
    if (now_s - at).abs() > MAX_SKEW_S {
        let now = chrono::DateTime::from_timestamp(now_s, 0)
            .map(|t| t.format("%Y%m%dT%H%M%SZ").to_string())
            .unwrap_or_default();
        return Err(SigError::Skewed { amz_date, now });
    }
    let secret = secret_of(&auth.access_key_id)
        .ok_or_else(|| SigError::UnknownKey(auth.access_key_id.clone()))?;
    let expected = sign(req, &auth, &secret)?;
    if bool::from(expected.ct_eq(auth.signature.as_slice())) {
        Ok(auth)
    } else {
        Err(SigError::Mismatch)
    }
}

/// The SHA-256 of a body.
pub fn body_sha256(body: &[u8]) -> [u8; 32] {
    Sha256::digest(body).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The AWS Signature Version 4 test suite's credentials and time.
    const KEY_ID: &str = "AKIDEXAMPLE";
    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    const AMZ_DATE: &str = "20150830T123600Z";
    const NOW: i64 = 1_440_938_160; // 2015-08-30T12:36:00Z

    fn request<'a>(
        method: &'a str,
        path: &'a str,
        query: &'a str,
        headers: &[(&'a str, &'a str)],
        body: &[u8],
    ) -> Request<'a> {
        Request {
            method,
            raw_path: path,
            raw_query: query,
            headers: headers.iter().map(|(k, v)| (*k, v.as_bytes())).collect(),
            body_sha256: body_sha256(body),
        }
    }

    fn suite_authorization(signed: &str, signature: &str) -> String {
        format!(
            "AWS4-HMAC-SHA256 Credential={KEY_ID}/20150830/us-east-1/service/aws4_request, SignedHeaders={signed}, Signature={signature}"
        )
    }

    /// Cases of the published suite that apply to this flavour: paths
    /// without characters to encode (the suite encodes a raw path once;
    /// Lambda clients send it encoded and sign it encoded again), query
    /// ordering, header values and repeats.
    #[test]
    fn the_published_test_vectors_that_apply() {
        /// Name, path, query, extra headers, signed headers, signature.
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a str,
            &'a [(&'a str, &'a str)],
            &'a str,
            &'a str,
        );
        let cases: &[Case] = &[
            (
                "get-vanilla",
                "/",
                "",
                &[],
                "host;x-amz-date",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
            (
                "get-header-key-duplicate",
                "/",
                "",
                &[
                    ("My-Header1", "value2"),
                    ("My-Header1", "value2"),
                    ("My-Header1", "value1"),
                ],
                "host;my-header1;x-amz-date",
                "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea",
            ),
            (
                "get-header-value-multiline (folded)",
                "/",
                "",
                &[("My-Header1", "value1,value2,value3")],
                "host;my-header1;x-amz-date",
                "ba17b383a53190154eb5fa66a1b836cc297cc0a3d70a5d00705980573d8ff790",
            ),
        ];
        for (name, path, query, extra, signed, signature) in cases {
            let auth = suite_authorization(signed, signature);
            let mut headers = vec![
                ("Host", "example.amazonaws.com"),
                ("X-Amz-Date", AMZ_DATE),
                ("Authorization", auth.as_str()),
            ];
            headers.extend(extra.iter().copied());
            let req = request("GET", path, query, &headers, b"");
            let ok = verify(&req, "service", NOW, |k| {
                (k == KEY_ID).then(|| SECRET.to_string())
            });
            assert!(ok.is_ok(), "{name}: {ok:?}");
        }
    }

    #[test]
    fn canonical_parts() {
        // Query: decoded, re-encoded, sorted by key then value.
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        assert_eq!(
            canonical_query("Param2=value2&Param1=value1"),
            "Param1=value1&Param2=value2"
        );
        assert_eq!(canonical_query("k=a%20b&x=%7e&y=+"), "k=a%20b&x=~&y=%2B");
        assert_eq!(canonical_query("flag"), "flag=");
        assert_eq!(canonical_query(""), "");
        // Path: what arrived, encoded once more.
        assert_eq!(
            canonical_uri("/2015-03-31/functions/f1%3A%24LATEST/invocations"),
            "/2015-03-31/functions/f1%253A%2524LATEST/invocations"
        );
        assert_eq!(
            canonical_uri("/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af1"),
            "/2015-03-31/functions/arn%253Aaws%253Alambda%253Aus-east-1%253A123456789012%253Afunction%253Af1"
        );
        assert_eq!(canonical_uri(""), "/");
        // Header values: trimmed, inner spaces collapsed.
        assert_eq!(canonical_value(b"  a   b  c "), "a b c");
    }

    /// Signs like botocore (the canonical request built independently here,
    /// from the rules), then checks what the verifier says of variations.
    fn signed_request(
        path: &'static str,
        query: &'static str,
        body: &[u8],
    ) -> (Vec<(String, String)>, [u8; 32]) {
        let canonical = format!(
            "POST\n{}\n{}\ncontent-type:application/json\nhost:127.0.0.1:8080\nx-amz-date:{AMZ_DATE}\n\ncontent-type;host;x-amz-date\n{}",
            canonical_uri(path),
            canonical_query(query),
            hex::encode(Sha256::digest(body))
        );
        let sts = string_to_sign(
            AMZ_DATE,
            "20150830/us-east-1/lambda/aws4_request",
            &canonical,
        );
        let sig = hmac(
            &signing_key(SECRET, "20150830", "us-east-1", "lambda"),
            sts.as_bytes(),
        );
        let auth = format!(
            "AWS4-HMAC-SHA256 Credential={KEY_ID}/20150830/us-east-1/lambda/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature={}",
            hex::encode(sig)
        );
        (
            vec![
                ("Content-Type".into(), "application/json".into()),
                ("Host".into(), "127.0.0.1:8080".into()),
                ("X-Amz-Date".into(), AMZ_DATE.into()),
                ("Authorization".into(), auth),
            ],
            Sha256::digest(body).into(),
        )
    }

    fn check(
        path: &str,
        query: &str,
        headers: &[(String, String)],
        body_hash: [u8; 32],
        now: i64,
    ) -> Result<Authorization, SigError> {
        let req = Request {
            method: "POST",
            raw_path: path,
            raw_query: query,
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_bytes()))
                .collect(),
            body_sha256: body_hash,
        };
        verify(&req, "lambda", now, |k| {
            (k == KEY_ID).then(|| SECRET.to_string())
        })
    }

    #[test]
    fn arns_qualifiers_and_what_breaks_a_signature() {
        let path = "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Af1%3Aprod/invocations";
        let (headers, hash) = signed_request(path, "Qualifier=prod&b=2", b"{\"x\":1}");
        assert!(check(path, "Qualifier=prod&b=2", &headers, hash, NOW).is_ok());
        // The same query in another order is the same request.
        assert!(check(path, "b=2&Qualifier=prod", &headers, hash, NOW).is_ok());
        // Header whitespace is not part of the signature.
        let mut spaced = headers.clone();
        spaced[0].1 = "  application/json  ".into();
        assert!(check(path, "Qualifier=prod&b=2", &spaced, hash, NOW).is_ok());
        // An altered body, path, query or header is.
        assert_eq!(
            check(
                path,
                "Qualifier=prod&b=2",
                &headers,
                body_sha256(b"{\"x\":2}"),
                NOW
            ),
            Err(SigError::Mismatch)
        );
        assert_eq!(
            check(
                "/2015-03-31/functions/f2/invocations",
                "Qualifier=prod&b=2",
                &headers,
                hash,
                NOW
            ),
            Err(SigError::Mismatch)
        );
        assert_eq!(
            check(path, "Qualifier=dev&b=2", &headers, hash, NOW),
            Err(SigError::Mismatch)
        );
        let mut other = headers.clone();
        other[0].1 = "text/plain".into();
        assert_eq!(
            check(path, "Qualifier=prod&b=2", &other, hash, NOW),
            Err(SigError::Mismatch)
        );
        // Encoding the path only once (as for S3) would not have matched.
        let once = {
            let mut h = headers.clone();
            let canonical = format!(
                "POST\n{}\n{}\ncontent-type:application/json\nhost:127.0.0.1:8080\nx-amz-date:{AMZ_DATE}\n\ncontent-type;host;x-amz-date\n{}",
                path,
                canonical_query("Qualifier=prod&b=2"),
                hex::encode(hash)
            );
            let sts = string_to_sign(
                AMZ_DATE,
                "20150830/us-east-1/lambda/aws4_request",
                &canonical,
            );
            let sig = hmac(
                &signing_key(SECRET, "20150830", "us-east-1", "lambda"),
                sts.as_bytes(),
            );
            h[3].1 = h[3].1.rsplit_once("Signature=").unwrap().0.to_string()
                + "Signature="
                + &hex::encode(sig);
            h
        };
        assert_eq!(
            check(path, "Qualifier=prod&b=2", &once, hash, NOW),
            Err(SigError::Mismatch)
        );
    }

    #[test]
    fn time_scope_and_keys() {
        let path = "/2015-03-31/functions/f1/invocations";
        let (headers, hash) = signed_request(path, "", b"");
        // 15 minutes either way are accepted; beyond is a replay.
        assert!(check(path, "", &headers, hash, NOW + MAX_SKEW_S).is_ok());
        assert!(check(path, "", &headers, hash, NOW - MAX_SKEW_S).is_ok());
        assert!(matches!(
            check(path, "", &headers, hash, NOW + MAX_SKEW_S + 1),
            Err(SigError::Skewed { .. })
        ));
        // An unknown key, a wrong secret.
        let req = Request {
            method: "POST",
            raw_path: path,
            raw_query: "",
            headers: headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_bytes()))
                .collect(),
            body_sha256: hash,
        };
        assert_eq!(
            verify(&req, "lambda", NOW, |_| None),
            Err(SigError::UnknownKey(KEY_ID.into()))
        );
        assert_eq!(
            verify(&req, "lambda", NOW, |_| Some("not the secret".into())),
            Err(SigError::Mismatch)
        );
        assert!(matches!(
            verify(&req, "s3", NOW, |_| Some(SECRET.into())),
            Err(SigError::WrongService(_))
        ));
        // A scope of another day than X-Amz-Date.
        let mut other_day = headers.clone();
        other_day[3].1 = other_day[3].1.replace("/20150830/", "/20150831/");
        assert!(matches!(
            check(path, "", &other_day, hash, NOW),
            Err(SigError::ScopeDate { .. })
        ));
        // No signature at all.
        let bare = Request {
            method: "GET",
            raw_path: "/",
            raw_query: "",
            headers: vec![("Host", b"x".as_slice())],
            body_sha256: hash,
        };
        assert_eq!(
            verify(&bare, "lambda", NOW, |_| None),
            Err(SigError::Missing)
        );
    }

    #[test]
    fn malformed_authorizations_are_refused_by_what_is_wrong() {
        for (header, says) in [
            ("AWS4-HMAC-SHA1 Credential=a/20150830/r/lambda/aws4_request, SignedHeaders=host, Signature=00", "AWS4-HMAC-SHA256"),
            ("AWS4-HMAC-SHA256 Credential=a/2015/r/lambda/aws4_request, SignedHeaders=host, Signature=00", "YYYYMMDD"),
            ("AWS4-HMAC-SHA256 Credential=a/20150830/r/lambda/aws4_request, SignedHeaders=x-amz-date;host, Signature=00", "sorted"),
            ("AWS4-HMAC-SHA256 Credential=a/20150830/r/lambda/aws4_request, SignedHeaders=x-amz-date, Signature=00", "host"),
            ("AWS4-HMAC-SHA256 Credential=a/20150830/r/lambda/aws4_request, SignedHeaders=host, Signature=zz", "64 hex"),
            ("AWS4-HMAC-SHA256 Credential=a/20150830/r/lambda, SignedHeaders=host, Signature=00", "KEY/YYYYMMDD"),
            ("AWS4-HMAC-SHA256 SignedHeaders=host, Signature=00", "Credential"),
        ] {
            match Authorization::parse(header) {
                Err(SigError::Malformed(m)) => assert!(m.contains(says), "{header}: {m}"),
                other => panic!("{header}: {other:?}"),
            }
        }
    }
}
