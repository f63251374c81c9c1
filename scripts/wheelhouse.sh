#!/usr/bin/env bash
# The offline install route: every wheel an execute point needs, in one directory.
#   WHEELHOUSE=/srv/condor_docker-wheels HTCONDOR_SERIES=25.0 bash scripts/wheelhouse.sh
# then, on a machine with no index:  WHEELHOUSE=/srv/condor_docker-wheels bash scripts/setup-venv.sh
# (or: pip install --no-index --find-links DIR condor_docker).
set -euo pipefail
PYTHON=${PYTHON:-/opt/condor_docker/venv/bin/python}
here=$(cd "$(dirname "$0")/.." && pwd)
WHEELHOUSE=${WHEELHOUSE:?set WHEELHOUSE to the directory to fill}
series=${HTCONDOR_SERIES:?set HTCONDOR_SERIES to the pool series, e.g. 25.0}
mkdir -p "$WHEELHOUSE"
DIST="$WHEELHOUSE" PYTHON="$PYTHON" bash "$here/scripts/dist.sh" >/dev/null
"$PYTHON" -m pip download -q -d "$WHEELHOUSE" -c "$here/constraints.txt" \
  wheel setuptools docker "htcondor==$series.*" htchirp psutil
ls "$WHEELHOUSE"
