#!/usr/bin/env bash
# Runs every check and test: formatting, lints, the bootstraps' unit tests,
# and the Rust tests (unit, API, engine, and real-Docker end-to-end tests).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
export IGNIS_IMAGE_DIR="$PWD/ignis-data/images"

echo "== cargo fmt --check"
cargo fmt --all --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== runtime image"
cargo build --locked --bin ignis
./target/debug/ignis images build

echo "== bootstrap unit tests (python)"
python3 -m unittest discover -s runtimes/python -p 'test_*.py'
echo "== bootstrap unit tests (node)"
node --test runtimes/node/

echo "== cargo test"
cargo test --workspace --locked
