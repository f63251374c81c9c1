#!/bin/bash
# What tests/pool_roles needs beyond the core venv: a compose tool (Debian's docker-compose)
# to run examples/pool/compose.yaml, and parsers/schemas to validate the examples.
# Idempotent; the pool image itself is built by the tests (scripts/pool-base-image.sh,
# examples/pool/build-image.sh), cached between runs.
set -euo pipefail
VENV=${VENV:-/opt/condor_docker/venv}
if ! docker compose version >/dev/null 2>&1 && ! command -v docker-compose >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker-compose >/dev/null
fi
if ! "$VENV/bin/python" -c 'import yaml, jsonschema, kubernetes_validate' 2>/dev/null; then
    "$VENV/bin/pip" install -q --disable-pip-version-check pyyaml jsonschema kubernetes-validate
fi
