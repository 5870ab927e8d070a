//! The host side of the sandbox protocol, as properties over arbitrary
//! bytes. Shared by the proptests (`tests/properties.rs`) and the fuzz
//! target (`fuzz/fuzz_targets/protocol.rs`).

use ignis_sandbox::protocol::GuestMessage;
use ignis_sandbox::{Channel, ChannelError};

/// A float as far as it compares: serde_json's default parser may land one
/// unit in the last place off, so two spellings of a number can differ there.
fn canon_f64(f: f64) -> String {
    format!("{f:.12e}")
}

fn canon_value(v: serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    match v {
        Value::Number(n) if n.is_f64() => Value::String(canon_f64(n.as_f64().unwrap_or_default())),
        Value::Array(a) => Value::Array(a.into_iter().map(canon_value).collect()),
        Value::Object(o) => {
            Value::Object(o.into_iter().map(|(k, v)| (k, canon_value(v))).collect())
        }
        other => other,
    }
}

/// A message in a form that compares: the raw result value re-read as
/// JSON, so that two spellings of one value are equal.
pub fn canon(msg: &GuestMessage) -> String {
    match msg {
        GuestMessage::Result(r) => {
            let outcome = match &r.outcome {
                Ok(raw) => Ok(serde_json::from_str::<serde_json::Value>(raw.get())
                    .map(|v| canon_value(v).to_string())
                    .unwrap_or_else(|_| raw.get().to_string())),
                Err(e) => Err(e),
            };
            format!(
                "result {:?} {:?} {:?} {:?}",
                r.id,
                outcome,
                r.logs,
                r.duration_ms.map(canon_f64)
            )
        }
        other => format!("{other:?}"),
    }
}

/// One line: no panic, and a message is a function of the JSON value, not
/// of its spelling (re-serialized, it parses to the same message).
pub fn guest_line(line: &[u8]) {
    let Ok(msg) = GuestMessage::parse(line) else {
        return;
    };
    if let GuestMessage::Result(r) = &msg {
        if let Ok(raw) = &r.outcome {
            serde_json::from_str::<&serde_json::value::RawValue>(raw.get())
                .expect("a result's value is not JSON");
        }
    }
    // A value serde_json cannot hold (a number out of range) has no second
    // spelling to compare with.
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(line) else {
        return;
    };
    let respelled = serde_json::to_vec_pretty(&value).expect("a JSON value serializes");
    let again = GuestMessage::parse(&respelled).expect("the same JSON, spelled again, is refused");
    assert_eq!(canon(&msg), canon(&again));
}

/// A byte stream through the host's framing: no panic, it ends, and it
/// gives at most one message per line, each what `parse` makes of it.
pub async fn stream(data: &[u8]) {
    // Each line with whether a newline ends it (the last piece may not).
    let pieces: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
    let count = pieces.len();
    let lines: Vec<(&[u8], bool)> = pieces
        .into_iter()
        .enumerate()
        .map(|(i, line)| (line, i + 1 < count))
        .filter(|(line, _)| !line.iter().all(u8::is_ascii_whitespace))
        .collect();
    let mut channel = Channel::new(std::io::Cursor::new(data.to_vec()), tokio::io::sink());
    for (line, terminated) in lines {
        match channel.recv().await {
            Ok(msg) => {
                assert!(terminated, "an unterminated line became a message");
                let parsed = GuestMessage::parse(line).expect("the channel took a bad line");
                assert_eq!(canon(&msg), canon(&parsed));
            }
            Err(ChannelError::Exited(_)) | Err(ChannelError::BadMessage(_)) => {
                assert!(terminated, "an unterminated line was read");
            }
            Err(ChannelError::Closed) => {
                assert!(!terminated, "the channel closed before its last line");
                return;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert!(matches!(channel.recv().await, Err(ChannelError::Closed)));
}
