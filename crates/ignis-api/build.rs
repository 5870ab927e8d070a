//! The console (web/dist) is embedded at compile time: rebuild this crate
//! when it changes, appears or goes (rust-embed tracks only the files that
//! existed at the last build).
fn main() {
    println!("cargo:rerun-if-changed=../../web/dist");
}
