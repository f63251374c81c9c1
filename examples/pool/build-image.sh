#!/bin/bash
# Build the pool image: stage a small context (this package, its requirements, an
# optional HTCondor tarball) and `docker build` examples/pool/Dockerfile.
#   build-image.sh [--base IMAGE] [--htcondor TARBALL] [--tag TAG] [--wheels]
# --wheels downloads the Python dependencies here (with this machine's pip and its
# index/proxy settings) and builds with no network inside the build; the wheels are for
# this machine's Python, so use it only with a base of the same Python (the Debian test
# base); the official EL9 base installs from the index instead (needs network in builds).
# Without --base the Dockerfile's default (the official HTCondor base image) is used.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
BASE="" TARBALL="" TAG=condor-docker/pool:latest WHEELS=""
PIP=${PIP:-pip3}
while [ $# -gt 0 ]; do
    case "$1" in
        --base) BASE=$2; shift 2 ;;
        --htcondor) TARBALL=$2; shift 2 ;;
        --tag) TAG=$2; shift 2 ;;
        --wheels) WHEELS=1; shift ;;
        *) echo "usage: $0 [--base IMAGE] [--htcondor TARBALL] [--tag TAG] [--wheels]" >&2; exit 64 ;;
    esac
done
CTX=$(mktemp -d /var/tmp/condor-docker-pool-ctx.XXXXXX)
trap 'rm -rf "$CTX"' EXIT
mkdir -p "$CTX/htcondor" "$CTX/wheels" "$CTX/src"
cp "$HERE/Dockerfile" "$CTX/"
cp -r "$REPO/condor_docker" "$REPO/setup.cfg" "$REPO/pyproject.toml" "$REPO/README.md" "$CTX/src/"
find "$CTX/src" -name __pycache__ -prune -exec rm -rf {} +
"$PIP" wheel -q --disable-pip-version-check --no-deps -w "$CTX/wheels" "$CTX/src" >/dev/null
rm -rf "$CTX/src"
python3 - "$REPO/setup.cfg" >"$CTX/requirements.txt" <<'PY'
import configparser, sys
cfg = configparser.ConfigParser(); cfg.read(sys.argv[1])
print("\n".join(r.strip() for r in cfg["options"]["install_requires"].splitlines() if r.strip()))
PY
if [ -n "$TARBALL" ]; then
    tar -C "$CTX/htcondor" --strip-components=1 -xJf "$TARBALL"
fi
ARGS=(--network host -t "$TAG")
if [ -n "$WHEELS" ]; then
    "$PIP" download -q --disable-pip-version-check --only-binary=:all: -d "$CTX/wheels" -r "$CTX/requirements.txt"
    ARGS+=(--build-arg PIP_ARGS=--no-index)
fi
[ -n "$BASE" ] && ARGS+=(--build-arg "BASE=$BASE")
docker build -q "${ARGS[@]}" "$CTX" >/dev/null
echo "built $TAG"
