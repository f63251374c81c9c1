#!/bin/bash
# One command for a pool on this machine: build the image (if missing), make the pool
# secret and the execute root, then `docker compose up` cm + ap + N execute points.
#   examples/pool/up.sh [N]         (N execute points, default 1)
# Environment: see compose.yaml (POOL_IMAGE, POOL_CM_PORT, POOL_AP_PORT, POOL_INTERFACE,
# POOL_EXECUTE_ROOT, POOL_SECRET, POOL_SITE_CONFIG, POOL_PROJECT); POOL_BASE / POOL_HTCONDOR
# are passed to build-image.sh as --base / --htcondor (POOL_WHEELS=1: --wheels); the image
# is built when missing, or always with POOL_REBUILD=1.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
N=${1:-1}
export POOL_IMAGE=${POOL_IMAGE:-condor-docker/pool:latest}
export POOL_EXECUTE_ROOT=${POOL_EXECUTE_ROOT:-/var/lib/condor-pool/execute}
export POOL_SECRET=${POOL_SECRET:-$HERE/pool-secrets/pool-password}
export POOL_SITE_CONFIG=${POOL_SITE_CONFIG:-$HERE/site}
COMPOSE=${COMPOSE:-$(docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)}
if [ -n "${POOL_REBUILD:-}" ] || ! docker image inspect "$POOL_IMAGE" >/dev/null 2>&1; then
    "$HERE/build-image.sh" --tag "$POOL_IMAGE" ${POOL_BASE:+--base "$POOL_BASE"} ${POOL_HTCONDOR:+--htcondor "$POOL_HTCONDOR"} ${POOL_WHEELS:+--wheels}
fi
if [ ! -s "$POOL_SECRET" ]; then
    mkdir -p "$(dirname "$POOL_SECRET")" && chmod 700 "$(dirname "$POOL_SECRET")"
    (umask 077 && head -c 32 /dev/urandom | base64 >"$POOL_SECRET")
fi
# pool-node refuses a secret that is not root-owned 0600 as the container sees it (a rootless
# engine maps your uid to the container's root: then your own file is fine)
if [ "$(stat -c %u "$POOL_SECRET")" != 0 ] && ! docker info 2>/dev/null | grep -q rootless; then
    echo "up.sh: $POOL_SECRET is not owned by root; the nodes would refuse it: sudo chown root:root $POOL_SECRET" >&2
    exit 2
fi
if [ $(( 0$(stat -c %a "$POOL_SECRET") & 077 )) != 0 ]; then
    echo "up.sh: $POOL_SECRET is readable by group or other; the nodes would refuse it: chmod 0600 $POOL_SECRET" >&2
    exit 2
fi
mkdir -p "$POOL_EXECUTE_ROOT"
$COMPOSE -p "${POOL_PROJECT:-condor-pool}" -f "$HERE/compose.yaml" up -d --scale execute="$N"
echo "pool ${POOL_PROJECT:-condor-pool}: check with  docker exec <node> condor_docker health;" \
     "submit as the image's 'submitter' user on the access-point container (docs/POOL-IN-CONTAINERS.md)"
