#!/usr/bin/env bash
# Make the project's virtualenv and install condor_docker into it (idempotent).
# The venv lives outside the checkout, under /opt, and is made from the system
# Python, because job users and the condor user must be able to run our entry
# points: an interpreter or a checkout under /root (or a 0700 temp dir) is not
# readable to them.
set -euo pipefail
VENV=${VENV:-/opt/condor_docker/venv}
here=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
if ! $PY -c 'import ensurepip, venv' 2>/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$(dirname "$VENV")"
  $PY -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import docker, htcondor2, classad2, htchirp, psutil, pytest, hypothesis, wheel' 2>/dev/null; then
  "$VENV/bin/pip" install -q --disable-pip-version-check wheel setuptools docker htcondor htchirp psutil pytest hypothesis 2>&1 \
    | grep -v "^WARNING: Location" || true
fi
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --no-build-isolation --force-reinstall "$here" 2>&1 \
  | grep -v "^WARNING: Location" || true
chmod -R a+rX "$VENV"
"$VENV/bin/condor_docker" --help >/dev/null
