//! The function-config validators, as properties over arbitrary input.
//! Shared by the proptests (`tests/properties.rs`) and the fuzz target
//! (`fuzz/fuzz_targets/config.rs`). Each invariant is written apart from
//! the validator it checks, from the validator's documentation.

use std::collections::BTreeMap;

use ignis_core::function::{
    limits, validate_alias_name, validate_handler, validate_name, validate_route, validate_weights,
    Alias, CreateFunctionRequest, FunctionConfig, FunctionPatch, Qualifier, UpdateFunctionRequest,
};

/// Every validator on one string: no panic, and what is accepted has the
/// documented shape.
pub fn strings(s: &str) {
    if validate_name(s).is_ok() {
        assert!((1..=64).contains(&s.len()), "{s:?}");
        assert!(s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()));
        assert!(s
            .bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_')));
    }
    if validate_route(s).is_ok() {
        assert!(
            s.starts_with('/') && s.len() <= limits::ROUTE_MAX_LEN,
            "{s:?}"
        );
        for seg in s[1..].split('/') {
            assert!(!seg.is_empty() && seg != "." && seg != "..", "{s:?}");
            assert!(seg
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b)));
        }
    }
    if validate_handler(s).is_ok() {
        handler_shape(s);
    }
    if validate_alias_name(s).is_ok() {
        assert!((1..=128).contains(&s.len()), "{s:?}");
        assert!(!s.bytes().all(|b| b.is_ascii_digit()) && s != "$LATEST");
    }
    if let Ok(q) = Qualifier::parse(s) {
        // What a qualifier shows parses back to it.
        assert_eq!(
            Qualifier::parse(&q.to_string()).ok(),
            Some(q.clone()),
            "{s:?}"
        );
        if let Qualifier::Version(v) = q {
            assert!(v > 0);
        }
    }
}

fn handler_shape(h: &str) {
    assert!(h.len() <= limits::HANDLER_MAX_LEN, "{h:?}");
    let (module, func) = h.rsplit_once('.').expect("a handler without a `.`");
    assert!(func.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_' || c == '$'));
    assert!(func
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '$'));
    assert!(!module.starts_with('/'), "{h:?}");
    for seg in module.split('/') {
        assert!(!seg.is_empty() && seg != "." && seg != "..", "{h:?}");
    }
}

/// What `validate` promises of a config it accepts.
pub fn config_invariants(c: &FunctionConfig) {
    handler_shape(&c.handler);
    if let Some(route) = &c.route {
        assert!(validate_route(route).is_ok());
    }
    assert!(limits::TIMEOUT_MS.contains(&c.timeout_ms));
    assert!(limits::MEMORY_MB.contains(&c.memory_mb));
    assert!(c.cpus.is_finite() && limits::CPUS.contains(&c.cpus));
    assert!(limits::MIN_WARM.contains(&c.min_warm));
    assert!(limits::MAX_CONCURRENCY.contains(&c.max_concurrency));
    assert!(c.min_warm <= c.max_concurrency);
    assert!(limits::BATCH_MAX_SIZE.contains(&c.batch_max_size));
    assert!(limits::BATCH_MAX_WAIT_MS.contains(&c.batch_max_wait_ms));
    assert!(limits::QUEUE_TIMEOUT_MS.contains(&c.queue_timeout_ms));
    assert!(limits::KEEP_ALIVE_S.contains(&c.keep_alive_s));
    assert!(limits::ASYNC_MAX_RETRIES.contains(&c.async_max_retries));
    assert!(limits::ASYNC_MAX_AGE_S.contains(&c.async_max_age_s));
    assert!(c.description.chars().count() <= limits::DESCRIPTION_CHARS);
    let env_bytes: usize = c.env.iter().map(|(k, v)| k.len() + v.len()).sum();
    assert!(env_bytes <= limits::ENV_TOTAL_BYTES);
    for (k, v) in &c.env {
        assert!(
            k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'),
            "{k:?}"
        );
        assert!(k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
        assert!(!k.starts_with("IGNIS_") && !k.starts_with("AWS_LAMBDA_"));
        assert!(!v.contains('\0'));
    }
    if let Some(role) = &c.role {
        assert!(!role.is_empty() && role.len() <= 2048);
    }
    if let Some(q) = &c.http_qualifier {
        assert!(Qualifier::parse(q).is_ok());
    }
    // Every file the handler may live in is a path a code archive can hold.
    for file in c.handler_files() {
        let files = BTreeMap::from([(file.clone(), String::new())]);
        assert!(
            ignis_package::from_files(&files, 1 << 20).is_ok(),
            "handler {:?} names {file:?}, which no archive can hold",
            c.handler
        );
    }
    // The stored form reads back as the same config.
    let json = serde_json::to_vec(c).expect("a config serializes");
    let back: FunctionConfig = serde_json::from_slice(&json).expect("a config reads back");
    assert_eq!(&back, c);
}

/// A request body as the API gets it: no panic; what parses serializes
/// back to itself (what the CLI sends is what the server parses); what
/// validates keeps the invariants.
pub fn request_json(data: &[u8]) {
    if let Ok(req) = serde_json::from_slice::<CreateFunctionRequest>(data) {
        let json = serde_json::to_vec(&req).expect("a request serializes");
        let back: CreateFunctionRequest =
            serde_json::from_slice(&json).expect("a serialized request parses");
        assert_eq!(back, req);
        strings(&req.name);
        if let Ok(c) = req.config.into_new_config() {
            config_invariants(&c);
        }
    }
    if let Ok(req) = serde_json::from_slice::<UpdateFunctionRequest>(data) {
        let json = serde_json::to_vec(&req).expect("a request serializes");
        let back: UpdateFunctionRequest =
            serde_json::from_slice(&json).expect("a serialized request parses");
        assert_eq!(back, req);
    }
    if let Ok(patch) = serde_json::from_slice::<FunctionPatch>(data) {
        let json = serde_json::to_vec(&patch).expect("a patch serializes");
        let back: FunctionPatch = serde_json::from_slice(&json).expect("a serialized patch parses");
        assert_eq!(back, patch);
        assert_eq!(patch.is_empty(), json == b"{}");
        if let Ok(c) = patch.apply(&base()) {
            config_invariants(&c);
        }
    }
    if let Ok((version, weights)) = serde_json::from_slice::<(u64, BTreeMap<u64, f64>)>(data) {
        weights_invariants(version, &weights);
    }
}

/// A valid config to patch.
pub fn base() -> FunctionConfig {
    FunctionPatch {
        runtime: Some(ignis_core::function::Runtime::Nodejs),
        handler: Some("index.handler".into()),
        ..Default::default()
    }
    .into_new_config()
    .expect("the base config is valid")
}

/// Accepted weights route every call to a version that exists.
pub fn weights_invariants(version: u64, weights: &BTreeMap<u64, f64>) {
    if validate_weights(version, weights).is_err() {
        return;
    }
    assert!(weights.len() <= 1);
    let total: f64 = weights.values().sum();
    assert!(total < 1.0);
    for (v, w) in weights {
        assert!(*v != version && *w > 0.0 && *w < 1.0);
    }
    let alias = Alias {
        name: "a".into(),
        version,
        weights: weights.clone(),
        description: String::new(),
        revision_id: String::new(),
        created_at_ms: 0,
        updated_at_ms: 0,
    };
    for r in [0.0, 0.25, 0.5, 0.75, 1.0 - f64::EPSILON] {
        let v = alias.pick(r);
        assert!(v == version || weights.contains_key(&v));
    }
    assert_eq!(alias.pick(1.0 - f64::EPSILON), version);
}
