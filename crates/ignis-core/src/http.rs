//! What an HTTP trigger's handler returns, as the response to send: a
//! proxy response object (`{statusCode, headers, cookies, body,
//! isBase64Encoded}`, API Gateway's shape) or any other JSON value (sent as
//! is with 200). Checked when the call ends, so that the invocation record
//! holds the outcome the caller gets.

use base64::Engine as _;
use serde_json::{Map, Value};

/// A response ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpReply {
    pub status: u16,
    /// In order; a name may repeat. `content-type` is among them.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Turns a handler's result (raw JSON) into the response, or says why it is
/// not a valid one.
pub fn reply_of(value: &str) -> Result<HttpReply, String> {
    let parsed: Value = serde_json::from_str(value).map_err(|e| e.to_string())?;
    let Some(obj) = parsed.as_object().filter(|o| o.contains_key("statusCode")) else {
        return Ok(HttpReply {
            status: 200,
            headers: vec![("content-type".into(), "application/json".into())],
            body: value.as_bytes().to_vec(),
        });
    };
    proxy_reply(obj)
}

fn proxy_reply(obj: &Map<String, Value>) -> Result<HttpReply, String> {
    let status = obj
        .get("statusCode")
        .and_then(Value::as_u64)
        .filter(|s| (100..=999).contains(s))
        .ok_or("`statusCode` must be an HTTP status code")? as u16;
    let is_base64 = obj
        .get("isBase64Encoded")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let body: Vec<u8> = match obj.get("body") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(s)) if is_base64 => base64::engine::general_purpose::STANDARD
            .decode(s)
            .map_err(|e| format!("`body` is not valid base64: {e}"))?,
        Some(Value::String(s)) => s.clone().into_bytes(),
        // API Gateway would reject it; being lenient costs nothing.
        Some(other) => other.to_string().into_bytes(),
    };
    let mut headers = Vec::new();
    if let Some(h) = obj.get("headers").and_then(Value::as_object) {
        for (k, v) in h {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            if !is_token(k) {
                return Err(format!("bad header name {k:?}"));
            }
            if !is_header_value(&v) {
                return Err(format!("bad value of header {k:?}"));
            }
            headers.push((k.to_ascii_lowercase(), v));
        }
    }
    if let Some(cookies) = obj.get("cookies").and_then(Value::as_array) {
        for c in cookies.iter().filter_map(Value::as_str) {
            if !is_header_value(c) {
                return Err("bad cookie".into());
            }
            headers.push(("set-cookie".into(), c.to_string()));
        }
    }
    if !headers.iter().any(|(k, _)| k == "content-type") {
        headers.push(("content-type".into(), "application/json".into()));
    }
    Ok(HttpReply {
        status,
        headers,
        body,
    })
}

/// An RFC 9110 token (a header name).
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// A header value: visible ASCII, spaces and tabs (no CR, LF or NUL).
fn is_header_value(s: &str) -> bool {
    s.bytes().all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_values_are_json_with_200() {
        let r = reply_of(r#"{"a":1}"#).unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, br#"{"a":1}"#);
        assert_eq!(
            r.headers,
            [("content-type".into(), "application/json".into())]
        );
    }

    #[test]
    fn proxy_responses_become_the_response() {
        let r = reply_of(
            r#"{"statusCode":201,"headers":{"X-A":"1","Content-Type":"text/plain"},"cookies":["s=1"],"body":"aGk=","isBase64Encoded":true}"#,
        )
        .unwrap();
        assert_eq!(r.status, 201);
        assert_eq!(r.body, b"hi");
        assert!(r.headers.contains(&("x-a".into(), "1".into())));
        assert!(r
            .headers
            .contains(&("content-type".into(), "text/plain".into())));
        assert!(r.headers.contains(&("set-cookie".into(), "s=1".into())));
    }

    #[test]
    fn invalid_proxy_responses_are_refused() {
        for bad in [
            r#"{"statusCode":"x"}"#,
            r#"{"statusCode":99}"#,
            r#"{"statusCode":200,"headers":{"bad name":"1"}}"#,
            r#"{"statusCode":200,"headers":{"x":"a\nb"}}"#,
            r#"{"statusCode":200,"body":"%%%","isBase64Encoded":true}"#,
        ] {
            assert!(reply_of(bad).is_err(), "{bad} accepted");
        }
    }
}
