#!/usr/bin/env bash
# Make a virtualenv and install condor_docker into it (idempotent).
# The venv lives outside the checkout, under /opt, and is made from the system
# Python, because job users and the condor user must be able to run our entry
# points: an interpreter or a checkout under /root (or a 0700 temp dir) is not
# readable to them.
#
#   VENV=/opt/condor_docker/venv   where (default)
#   WITH_TESTS=1                   also pytest and hypothesis (the dev/test venv: `make setup`);
#                                  `make install` leaves them out of a production venv
#   HTCONDOR_SERIES=25.0           the htcondor wheel's series; default: this machine's
#                                  `condor_version`, else whatever pip picks
#   WHEELHOUSE=dir                 install offline from a directory made by scripts/wheelhouse.sh
# Versions come from constraints.txt (the tested set).
set -euo pipefail
VENV=${VENV:-/opt/condor_docker/venv}
WITH_TESTS=${WITH_TESTS:-0}
here=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
if ! $PY -c 'import ensurepip, venv' 2>/dev/null; then
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi
if [ ! -x "$VENV/bin/python" ]; then
  mkdir -p "$(dirname "$VENV")"
  $PY -m venv "$VENV"
fi
series=${HTCONDOR_SERIES:-}
if [ -z "$series" ] && command -v condor_version >/dev/null 2>&1; then
  series=$(condor_version | sed -n 's/^\$CondorVersion: \([0-9]*\.[0-9]*\)\..*/\1/p' | head -1)
fi
htcondor=htcondor${series:+==$series.*}
pip_from=()
[ -n "${WHEELHOUSE:-}" ] && pip_from=(--no-index --find-links "$WHEELHOUSE")
wanted=(wheel setuptools docker "$htcondor" htchirp psutil)
probe='import docker, htcondor2, classad2, htchirp, psutil, wheel'
if [ -n "$series" ]; then   # a wheel of another series is reinstalled, not kept
  probe="$probe; from importlib.metadata import version; assert version('htcondor').startswith('$series.')"
fi
if [ "$WITH_TESTS" = 1 ]; then
  wanted+=(pytest hypothesis)
  probe="import pytest, hypothesis; $probe"
fi
if ! "$VENV/bin/python" -c "$probe" 2>/dev/null; then
  "$VENV/bin/pip" install -q --disable-pip-version-check "${pip_from[@]}" -c "$here/constraints.txt" \
    "${wanted[@]}" 2>&1 | grep -v "^WARNING: Location" || true
fi
"$VENV/bin/pip" install -q --disable-pip-version-check "${pip_from[@]}" --no-deps --no-build-isolation \
  --force-reinstall "$here" 2>&1 | grep -v "^WARNING: Location" || true
chmod -R a+rX "$VENV"
"$VENV/bin/condor_docker" --version >/dev/null
