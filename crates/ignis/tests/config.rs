//! The configuration schema, through the real binary: every setting can be
//! given in `ignis.toml`, in its environment variable and as a flag; flags
//! beat the environment, which beats the file, which beats the defaults;
//! `--print-config` shows the result with secrets redacted; bad input is
//! refused with a message that names it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_ignis");

/// `ignis [--config FILE] serve ARGS --print-config` with only `env` set
/// among the `IGNIS_*` variables.
fn print_config(file: Option<&str>, env: &[(&str, &str)], args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    for (key, _) in std::env::vars() {
        if key.starts_with("IGNIS_") {
            cmd.env_remove(key);
        }
    }
    // No ./ignis.toml is picked up by accident.
    cmd.current_dir(dir.path());
    if let Some(text) = file {
        let path = dir.path().join("ignis.toml");
        std::fs::write(&path, text).unwrap();
        cmd.arg("--config").arg(&path);
    }
    cmd.arg("serve").args(args).arg("--print-config");
    cmd.envs(env.iter().copied());
    cmd.output().unwrap()
}

/// The printed configuration, parsed.
fn effective(
    file: Option<&str>,
    env: &[(&str, &str)],
    args: &[&str],
) -> BTreeMap<String, toml::Value> {
    let out = print_config(file, env, args);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        out.status.success(),
        "--print-config failed: {}{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: toml::Table = toml::from_str(&stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    doc["serve"]
        .as_table()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn refused(file: Option<&str>, env: &[(&str, &str)], args: &[&str]) -> String {
    let out = print_config(file, env, args);
    assert!(
        !out.status.success(),
        "accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// Per setting: a value other than its default, as TOML, as it is printed
/// back, and as a flag or environment value.
const SAMPLES: &[(&str, &str, &str)] = &[
    ("listen", r#""127.0.0.1:9911""#, "127.0.0.1:9911"),
    (
        "data_dir",
        r#""/tmp/ignis-cfg-data""#,
        "/tmp/ignis-cfg-data",
    ),
    (
        "image_dir",
        r#""/tmp/ignis-cfg-images""#,
        "/tmp/ignis-cfg-images",
    ),
    ("run_dir", r#""/tmp/ignis-cfg-run""#, "/tmp/ignis-cfg-run"),
    ("memory_budget_mb", "777", "777"),
    ("max_code_mb", "9", "9"),
    ("shutdown_grace_s", "3", "3"),
    ("queue_capacity", "17", "17"),
    ("stem_initial", "0", "0"),
    ("stem_max", "7", "7"),
    ("docker", "false", "false"),
    (
        "docker_socket",
        r#""/tmp/other-docker.sock""#,
        "/tmp/other-docker.sock",
    ),
    ("microvm", r#""off""#, "off"),
    (
        "qemu",
        r#""/opt/qemu/bin/qemu-system-x86_64""#,
        "/opt/qemu/bin/qemu-system-x86_64",
    ),
    ("microvm_accel", r#""tcg""#, "tcg"),
    ("microvm_snapshots", r#""streamed""#, "streamed"),
    ("record", "false", "false"),
    ("record_capacity", "55", "55"),
    ("stage_timings", "true", "true"),
    ("rollup_days", "2", "2"),
    ("invocation_hours", "5", "5"),
    ("max_invocations", "1234", "1234"),
    ("auth", r#""off""#, "off"),
    ("admin_key", r#""<redacted>""#, "ign_notarealkeyatall"),
    ("metrics_public", "true", "true"),
    ("auth_fail_burst", "4", "4"),
    ("auth_fail_per_minute", "6", "6"),
    (
        "console_dir",
        r#""/tmp/ignis-cfg-console""#,
        "/tmp/ignis-cfg-console",
    ),
    ("async_workers", "3", "3"),
    ("async_queue_per_function", "11", "11"),
    ("async_queue_total", "22", "22"),
    ("async_retry_base_ms", "250", "250"),
    ("aws_region", r#""eu-west-3""#, "eu-west-3"),
    ("aws_account", r#""123456789012""#, "123456789012"),
];

fn env_name(setting: &str) -> String {
    format!("IGNIS_{}", setting.to_uppercase())
}

fn flag(setting: &str) -> String {
    format!("--{}", setting.replace('_', "-"))
}

fn toml_value(text: &str) -> toml::Value {
    let doc: toml::Table = toml::from_str(&format!("v = {text}")).unwrap();
    doc["v"].clone()
}

#[test]
fn the_samples_cover_every_setting() {
    // A setting added without a sample here fails this test.
    let defaults = effective(None, &[], &[]);
    let sampled: Vec<&str> = SAMPLES.iter().map(|s| s.0).collect();
    let printed: Vec<&str> = defaults.keys().map(String::as_str).collect();
    let mut missing: Vec<&str> = printed
        .iter()
        .filter(|k| !sampled.contains(k))
        .copied()
        .collect();
    // Unset optional settings are not printed: they must still be sampled.
    for optional in ["admin_key", "console_dir"] {
        assert!(
            !printed.contains(&optional),
            "{optional} printed while unset"
        );
    }
    missing.sort();
    assert!(missing.is_empty(), "settings without a sample: {missing:?}");
    for (name, _, _) in SAMPLES {
        assert!(
            printed.contains(name) || ["admin_key", "console_dir"].contains(name),
            "sample for an unknown setting {name}"
        );
    }
}

#[test]
fn every_setting_can_be_given_in_the_file_the_environment_and_a_flag() {
    for (name, printed, raw) in SAMPLES {
        let expected = toml_value(printed);
        // The file holds the sample itself, except for the secret.
        let in_file = if *name == "admin_key" {
            format!("{name} = \"{raw}\"")
        } else {
            format!("{name} = {printed}")
        };
        let file = format!("[serve]\n{in_file}\n");
        let env = env_name(name);
        let flag = format!("{}={raw}", flag(name));
        for (source, got) in [
            ("file", effective(Some(&file), &[], &[])),
            ("environment", effective(None, &[(&env, raw)], &[])),
            ("flag", effective(None, &[], &[&flag])),
        ] {
            let value = got.get(*name);
            assert_eq!(value, Some(&expected), "{name} from the {source}: {got:?}");
        }
    }
}

#[test]
fn flags_beat_the_environment_which_beats_the_file() {
    let file = "[serve]\nlisten = \"127.0.0.1:1001\"\nqueue_capacity = 11\nstem_max = 9\n";
    let env = [
        ("IGNIS_LISTEN", "127.0.0.1:1002"),
        ("IGNIS_QUEUE_CAPACITY", "12"),
    ];
    let got = effective(Some(file), &env, &["--listen", "127.0.0.1:1003"]);
    assert_eq!(got["listen"].as_str(), Some("127.0.0.1:1003"));
    assert_eq!(got["queue_capacity"].as_integer(), Some(12));
    assert_eq!(got["stem_max"].as_integer(), Some(9));
    // Untouched settings keep their defaults.
    assert_eq!(got["shutdown_grace_s"].as_integer(), Some(30));
    assert_eq!(got["microvm_snapshots"].as_str(), Some("mapped"));
}

#[test]
fn secrets_are_redacted() {
    let key = "ign_thisisthesecretvalue00000000";
    let out = print_config(None, &[("IGNIS_ADMIN_KEY", key)], &[]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(!stdout.contains(key), "{stdout}");
    assert!(stdout.contains(r#"admin_key = "<redacted>""#), "{stdout}");
    // --help does not show the environment's value either.
    let help = Command::new(BIN)
        .args(["serve", "--help"])
        .env("IGNIS_ADMIN_KEY", key)
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains(key));
}

#[test]
fn shorthands_and_bare_switches() {
    let got = effective(
        None,
        &[],
        &[
            "--no-docker",
            "--no-microvm",
            "--no-record",
            "--no-auth",
            "--metrics-public",
        ],
    );
    assert_eq!(got["docker"].as_bool(), Some(false));
    assert_eq!(got["microvm"].as_str(), Some("off"));
    assert_eq!(got["record"].as_bool(), Some(false));
    assert_eq!(got["auth"].as_str(), Some("off"));
    assert_eq!(got["metrics_public"].as_bool(), Some(true));
    // The environment's usual spellings of a boolean.
    let got = effective(
        None,
        &[("IGNIS_METRICS_PUBLIC", "1"), ("IGNIS_NO_AUTH", "true")],
        &[],
    );
    assert_eq!(got["metrics_public"].as_bool(), Some(true));
    assert_eq!(got["auth"].as_str(), Some("off"));
    // A boolean in the file for `microvm`, as older files wrote it.
    let got = effective(Some("[serve]\nmicrovm = false\n"), &[], &[]);
    assert_eq!(got["microvm"].as_str(), Some("off"));
    // stem_max is raised to stem_initial.
    let got = effective(None, &[], &["--stem-initial", "6"]);
    assert_eq!(got["stem_max"].as_integer(), Some(6));
}

#[test]
fn bad_input_is_refused_by_name() {
    let err = refused(Some("[serve]\nlisten_addr = \"x\"\n"), &[], &[]);
    assert!(err.contains("unknown field `listen_addr`"), "{err}");
    let err = refused(Some("[serve]\nmicrovm_snapshots = \"fast\"\n"), &[], &[]);
    assert!(err.contains("fast") && err.contains("mapped"), "{err}");
    let err = refused(None, &[("IGNIS_MICROVM_ACCEL", "kvm")], &[]);
    assert!(err.contains("kvm") && err.contains("tcg"), "{err}");
    let err = refused(None, &[], &["--queue-capacity", "many"]);
    assert!(err.contains("--queue-capacity"), "{err}");
    let err = refused(None, &[], &["--auth=off", "--listen", "0.0.0.0:8080"]);
    assert!(err.contains("loopback"), "{err}");
    let err = refused(None, &[], &["--memory-budget-mb", "10"]);
    assert!(err.contains("memory_budget_mb"), "{err}");
    let err = refused(
        None,
        &[],
        &["--run-dir", &format!("/tmp/{}", "r".repeat(60))],
    );
    assert!(err.contains("too long"), "{err}");
}

#[test]
fn the_documentation_lists_every_setting() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/configuration.md"
    ))
    .unwrap();
    for (name, _, _) in SAMPLES {
        let row = format!("| `{name}` |");
        assert!(
            doc.contains(&row),
            "docs/configuration.md has no row for {name}"
        );
        assert!(
            doc.contains(&format!("`{}`", env_name(name))),
            "docs/configuration.md does not name {}",
            env_name(name)
        );
        assert!(
            doc.contains(&format!("`{}`", flag(name))),
            "docs/configuration.md does not name {}",
            flag(name)
        );
    }
}
