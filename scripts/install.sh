#!/usr/bin/env bash
# Builds the web console and ignis (release, the console embedded) and
# puts the binary on the PATH, so that the README's `ignis ...` examples
# work in any new shell.
# Usage: scripts/install.sh [PREFIX]   (default /usr/local: PREFIX/bin/ignis)
set -euo pipefail
cd "$(dirname "$0")/.."

prefix=${1:-${PREFIX:-/usr/local}}
if command -v npm >/dev/null; then
    (cd web && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error && npm run build)
else
    echo "install: npm is missing: building ignis without the web console (apt-get install npm)" >&2
fi
cargo build --release --locked --bin ignis
SUDO=""
if [ ! -w "$prefix/bin" ] && [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
$SUDO install -d "$prefix/bin"
$SUDO install -m 0755 target/release/ignis "$prefix/bin/ignis"
echo "install: $prefix/bin/ignis ($("$prefix/bin/ignis" --version))"
