#!/usr/bin/env bash
# One command for the benchmarks: builds release binaries, makes sure Docker
# and the runtime image are there, runs every measurement in one run, and
# writes bench/results/latest.{json,md}.
# Usage: bench/run.sh [ignis-bench options]   (e.g. --quick)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
# hey (Debian's), the load generator of --only-reliability.
if ! command -v hey >/dev/null; then
    SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get install -y -qq hey >/dev/null
fi
cargo build --release --locked --bin ignis --bin ignis-bench
./target/release/ignis images build
exec ./target/release/ignis-bench --ignis ./target/release/ignis "$@"
