#!/usr/bin/env bash
# What the tests need beyond what ignis needs (scripts/deps.sh): Debian's
# Chromium for the console's browser test, `hey` for the short load, soak
# and overload run, boto3 and the aws CLI (from PyPI, pinned, in
# .venv-aws) for the Lambda-compatible API's tests, and schemathesis
# (pinned, same venv) for the OpenAPI document's.
# Idempotent.
set -euo pipefail

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

need=()
# playwright-core 1.64.1 (web/package.json) drives Debian's Chromium 156.
command -v chromium >/dev/null || need+=(chromium)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# The load generator of the reliability runs (bench/src/reliability.rs).
command -v hey >/dev/null || need+=(hey)
if [ ${#need[@]} -gt 0 ]; then
    echo "test-deps: installing ${need[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
echo "test-deps: $(chromium --version 2>/dev/null || echo 'chromium missing')"

# The clients the Lambda API is tested with, unmodified, at pinned versions.
venv=.venv-aws
if ! "$venv/bin/python" -c 'import boto3, awscli' 2>/dev/null; then
    echo "test-deps: installing boto3 and awscli into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check boto3==1.43.11 awscli==1.45.11
fi
echo "test-deps: $("$venv/bin/python" -c 'import boto3; print("boto3", boto3.__version__)'), $("$venv/bin/aws" --version 2>&1)"
# The OpenAPI document's fuzzer (scripts/schemathesis.sh), in the same venv.
if [ "$("$venv/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version 4.32.5" ]; then
    echo "test-deps: installing schemathesis into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check schemathesis==4.32.5
fi
echo "test-deps: $("$venv/bin/schemathesis" --version)"
