//! The Lambda-compatible API driven by unmodified clients: boto3 and the
//! aws CLI (tests/aws/lambda_clients.py), with real SigV4 credentials of
//! real keys, against the real server and Docker.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{json, Value};

/// The Python with boto3 (scripts/test-deps.sh makes `.venv-aws`).
fn python() -> String {
    std::env::var("IGNIS_AWS_PYTHON").unwrap_or_else(|_| "python3".into())
}

fn aws_cli() -> String {
    std::env::var("IGNIS_AWS_CLI").unwrap_or_else(|_| "aws".into())
}

/// A key of `role` and its SigV4 credentials: (access key id, secret).
fn credentials(s: &Server, role: &str) -> (String, String) {
    let k = s.post(
        "/api/v1/keys",
        &json!({"name": format!("aws {role}"), "role": role}),
    );
    assert_eq!(k.status, 201, "{}", k.text);
    let id = k.body["id"].as_str().unwrap().to_string();
    let c = s.post(&format!("/api/v1/keys/{id}/aws-credentials"), &json!({}));
    assert_eq!(c.status, 201, "{}", c.text);
    let akid = c.body["access_key_id"].as_str().unwrap().to_string();
    let secret = c.body["secret_access_key"].as_str().unwrap().to_string();
    assert!(akid.starts_with("AKIG") && akid.len() == 20, "{akid}");
    assert_eq!(secret.len(), 40, "{secret}");
    // Listed without the secret.
    let list = s.get(&format!("/api/v1/keys/{id}/aws-credentials"));
    assert_eq!(list.status, 200, "{}", list.text);
    assert!(!list.text.contains(&secret), "{}", list.text);
    (akid, secret)
}

#[test]
fn boto3_and_the_aws_cli_manage_and_invoke_functions() {
    let s = Server::start(&[]);
    let (dev_akid, dev_secret) = credentials(&s, "developer");
    let (viewer_akid, viewer_secret) = credentials(&s, "viewer");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/aws/lambda_clients.py");
    let out = std::process::Command::new(python())
        .arg(script)
        .env("IGNIS_URL", &s.url)
        .env("IGNIS_ADMIN_KEY", &s.key)
        .env("DEV_AKID", &dev_akid)
        .env("DEV_SECRET", &dev_secret)
        .env("VIEWER_AKID", &viewer_akid)
        .env("VIEWER_SECRET", &viewer_secret)
        .env("AWS_CLI", aws_cli())
        .output()
        .expect("python3 runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the client suite failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- server log (tail)\n{}",
        tail(&s.log_text(), 4000)
    );
    assert!(stdout.contains("all passed"), "{stdout}");

    // A revoked credential stops working at once.
    let keys = s.get("/api/v1/keys").body;
    let dev = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["name"] == "aws developer")
        .cloned()
        .unwrap();
    let id = dev["id"].as_str().unwrap();
    let r = s.delete(&format!("/api/v1/keys/{id}/aws-credentials/{dev_akid}"));
    assert_eq!(r.status, 200, "{}", r.text);
    let probe = std::process::Command::new(python())
        .args(["-c", PROBE])
        .env("IGNIS_URL", &s.url)
        .env("AKID", &dev_akid)
        .env("SECRET", &dev_secret)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&probe.stdout).trim(),
        "UnrecognizedClientException 403",
        "{}",
        String::from_utf8_lossy(&probe.stderr)
    );
}

const PROBE: &str = r#"
import os, boto3
from botocore.exceptions import ClientError
c = boto3.client("lambda", endpoint_url=os.environ["IGNIS_URL"], region_name="us-east-1",
                 aws_access_key_id=os.environ["AKID"], aws_secret_access_key=os.environ["SECRET"])
try:
    c.list_functions()
    print("accepted")
except ClientError as e:
    print(e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
"#;

fn tail(s: &str, n: usize) -> &str {
    let mut from = s.len().saturating_sub(n);
    while !s.is_char_boundary(from) {
        from += 1;
    }
    &s[from..]
}

#[test]
fn credentials_are_managed_by_admins_or_by_the_key_itself() {
    let s = Server::start_api_only();
    let other = s.create_key("developer", Value::String("*".into()));
    let mine = s.create_key("invoker", Value::String("*".into()));
    let me = s.request_as(Some(&mine), reqwest::Method::GET, "/api/v1/whoami", None);
    let my_id = me.body["key_id"].as_str().unwrap().to_string();
    let them = s.request_as(Some(&other), reqwest::Method::GET, "/api/v1/whoami", None);
    let their_id = them.body["key_id"].as_str().unwrap().to_string();
    let own = s.request_as(
        Some(&mine),
        reqwest::Method::POST,
        &format!("/api/v1/keys/{my_id}/aws-credentials"),
        Some("{}"),
    );
    assert_eq!(own.status, 201, "{}", own.text);
    let theirs = s.request_as(
        Some(&mine),
        reqwest::Method::POST,
        &format!("/api/v1/keys/{their_id}/aws-credentials"),
        Some("{}"),
    );
    assert_eq!(
        theirs.status, 404,
        "another key's do not exist for it: {}",
        theirs.text
    );
    let missing = s.post("/api/v1/keys/key-nope/aws-credentials", &json!({}));
    assert_eq!(missing.status, 404, "{}", missing.text);
    // The signing secret is private to the server.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(s.data_path().join("aws-signing.key"))
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o600);
}
