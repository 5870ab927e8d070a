#!/usr/bin/env bash
# Sets up what is missing and runs the ignis server (SQLite + Docker).
# Usage: scripts/run.sh [ignis serve options...]   (e.g. --listen 0.0.0.0:8080)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
cargo build --release --locked --bin ignis
./target/release/ignis images build
exec ./target/release/ignis serve "$@"
