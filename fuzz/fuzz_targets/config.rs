//! The function-config validators on arbitrary input: request bodies
//! (`CreateFunctionRequest`, `UpdateFunctionRequest`, `FunctionPatch`, alias
//! weights) from JSON bytes, and every string validator on the bytes as
//! text (crates/ignis-core/tests/check).
#![no_main]

#[path = "../../crates/ignis-core/tests/check/mod.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::request_json(data);
    if let Ok(s) = std::str::from_utf8(data) {
        check::strings(s);
    }
});
