#!/usr/bin/env bash
# What the tests need beyond what ignis needs (scripts/deps.sh): Debian's
# Chromium for the console's browser test. Idempotent.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

need=()
# playwright-core 1.64.1 (web/package.json) drives Debian's Chromium 156.
command -v chromium >/dev/null || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
    echo "test-deps: installing ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "test-deps: $(chromium --version 2>/dev/null || echo 'chromium missing')"
