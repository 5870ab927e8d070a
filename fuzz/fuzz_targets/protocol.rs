//! The host side of the sandbox protocol on arbitrary bytes: one line
//! through `GuestMessage::parse`, and the whole input as a stream through
//! the channel's framing (crates/ignis-sandbox/tests/check).
#![no_main]

use std::sync::OnceLock;

#[path = "../../crates/ignis-sandbox/tests/check/mod.rs"]
mod check;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a tokio runtime")
    })
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::guest_line(data);
    runtime().block_on(check::stream(data));
});
