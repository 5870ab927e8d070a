#!/usr/bin/env bash
# Runs every check and test: formatting, lints, the bootstraps' unit tests,
# the web console's build and unit tests, the Rust tests (unit, API,
# engine, and real-Docker end-to-end tests), and the console's browser test.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
bash scripts/test-deps.sh
export IGNIS_IMAGE_DIR="$PWD/ignis-data/images"
# boto3 and the aws CLI for tests/aws.rs (scripts/test-deps.sh).
export IGNIS_AWS_PYTHON="$PWD/.venv-aws/bin/python" IGNIS_AWS_CLI="$PWD/.venv-aws/bin/aws"

# First: the ignis binary embeds web/dist when it is built.
echo "== web console: install, build, unit tests"
(cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error && npm run build && npm test)

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

echo "== schemathesis: the API against its OpenAPI document"
bash scripts/schemathesis.sh

echo "== reliability, short: capacity, soak, overload, noisy neighbour under hey"
cargo build --locked -p ignis-bench
./target/debug/ignis-bench --ignis ./target/debug/ignis --only-reliability --short --out target/reliability

echo "== web console: browser test (Chromium, the server with the console built in)"
(cd web && IGNIS_BIN="$PWD/../target/debug/ignis" npm run e2e)
