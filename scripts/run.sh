#!/usr/bin/env bash
# Sets up what is missing, installs the `ignis` command (/usr/local/bin) and
# runs the server (SQLite + Docker + microVMs).
# Usage: scripts/run.sh [ignis serve options...]   (e.g. --listen 0.0.0.0:8080)
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/deps.sh
bash scripts/install.sh
ignis=/usr/local/bin/ignis
"$ignis" images build
exec "$ignis" serve "$@"
