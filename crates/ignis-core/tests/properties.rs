//! Property tests of the function-config validators: the fuzz target's
//! properties (`check`), on strings and request bodies proptest makes up.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod check;

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{json, Value};

/// Strings near the rules: the characters validators care about.
fn near_string() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9/._~$:-]{0,20}",
        "/[a-z.]{0,6}(/[a-z.~]{0,6}){0,3}",
        "[a-z./]{0,10}\\.[a-z_$0-9]{0,6}",
        ".{0,12}",
        "[0-9]{1,25}",
        Just("$LATEST".to_string()),
        "[a-z]{250,260}\\.h",
    ]
}

/// A configuration field with a value of about the right kind and range.
fn field() -> impl Strategy<Value = (String, Value)> {
    let number = prop_oneof![
        0u64..2_000_000u64,
        Just(u64::MAX),
        Just(u32::MAX as u64 + 1)
    ];
    prop_oneof![
        near_string().prop_map(|s| ("handler".into(), json!(s))),
        near_string().prop_map(|s| ("route".into(), json!(s))),
        Just(("route".into(), Value::Null)),
        prop_oneof![Just("python3"), Just("nodejs"), Just("ruby")]
            .prop_map(|s| ("runtime".into(), json!(s))),
        prop_oneof![Just("docker"), Just("microvm"), Just("x")]
            .prop_map(|s| ("backend".into(), json!(s))),
        prop_oneof![Just("none"), Just("key")].prop_map(|s| ("http_auth".into(), json!(s))),
        (
            prop_oneof![
                Just("timeout_ms"),
                Just("memory_mb"),
                Just("min_warm"),
                Just("max_concurrency"),
                Just("batch_max_size"),
                Just("batch_max_wait_ms"),
                Just("queue_timeout_ms"),
                Just("keep_alive_s"),
                Just("async_max_retries"),
                Just("async_max_age_s"),
            ],
            number
        )
            .prop_map(|(k, n)| (k.to_string(), json!(n))),
        (-1.0f64..20.0).prop_map(|f| ("cpus".into(), json!(f))),
        proptest::collection::btree_map("[A-Za-z_0-9]{0,8}", ".{0,8}", 0..4)
            .prop_map(|m| ("env".into(), json!(m))),
        ".{0,300}".prop_map(|s| ("description".into(), json!(s))),
        prop_oneof![".{0,20}".prop_map(Value::from), Just(Value::Null)]
            .prop_map(|v| ("role".into(), v)),
        prop_oneof![near_string().prop_map(Value::from), Just(Value::Null)]
            .prop_map(|v| ("http_qualifier".into(), v)),
        any::<bool>().prop_map(|b| ("batch_concurrent".into(), json!(b))),
        Just(("bogus".into(), json!(1))),
    ]
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    (
        proptest::option::of(near_string()),
        any::<bool>(),
        proptest::collection::vec(field(), 0..10),
    )
        .prop_map(|(name, with_code, fields)| {
            let mut obj: serde_json::Map<String, Value> = fields.into_iter().collect();
            if let Some(name) = name {
                obj.insert("name".into(), json!(name));
            }
            if with_code {
                obj.insert("code".into(), json!({"files": {"index.js": ""}}));
            }
            serde_json::to_vec(&obj).unwrap()
        })
}

proptest! {
    #[test]
    fn validators_on_strings(s in near_string()) {
        check::strings(&s);
    }

    #[test]
    fn request_bodies(data in body()) {
        check::request_json(&data);
    }

    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..128)) {
        check::request_json(&data);
        if let Ok(s) = std::str::from_utf8(&data) {
            check::strings(s);
        }
    }

    #[test]
    fn weights(version in 0u64..4, weights in proptest::collection::btree_map(0u64..4, -0.5f64..1.5, 0..3)) {
        check::weights_invariants(version, &weights);
        let _: BTreeMap<u64, f64> = weights;
    }
}

#[test]
fn a_long_handler_names_a_file_an_archive_can_hold() {
    let handler = format!("{}.h", "a".repeat(252));
    check::request_json(&serde_json::to_vec(&json!({ "handler": handler })).unwrap());
}
