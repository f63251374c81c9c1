#!/usr/bin/env bash
# `make dist`: a wheel and an sdist of the committed tree in dist/, version from
# condor_docker/core/version.py (setup.cfg reads it).  Built in a temporary copy,
# so the checkout gets no build/ or *.egg-info.
set -euo pipefail
PYTHON=${PYTHON:-/opt/condor_docker/venv/bin/python}
here=$(cd "$(dirname "$0")/.." && pwd)
out=${DIST:-$here/dist}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git -C "$here" archive HEAD | tar -x -C "$work"
mkdir -p "$out"
(cd "$work" && "$PYTHON" -c '
import sys
from setuptools import build_meta as backend
out = sys.argv[1]
print(backend.build_wheel(out))
print(backend.build_sdist(out))' "$out") | grep -E '\.(whl|tar\.gz)$' | sed "s|^|$out/|"
