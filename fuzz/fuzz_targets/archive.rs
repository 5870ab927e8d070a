//! `from_zip` / `unpack` on arbitrary bytes: the properties of
//! crates/ignis-package/tests/check (no panic, the two agree, accepted paths
//! are safe, the normalized archive normalizes to itself).
#![no_main]

#[path = "../../crates/ignis-package/tests/check/mod.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| check::archive(data));
