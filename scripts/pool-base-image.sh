#!/bin/bash
# Build the test base image for examples/pool/Dockerfile from Debian's own packages
# (there is no Docker Hub here): debootstrap a minimal bookworm with HTCondor's runtime
# libraries, Python and sshd, then `docker import` it.  Idempotent: an image that is
# already present is reused.  Real sites do not need this: they build examples/pool
# on the official HTCondor base image (the Dockerfile's default BASE).
set -euo pipefail
IMAGE=${POOL_BASE_IMAGE:-condor-docker-test/debian-base:12}
MIRROR=${DEBIAN_MIRROR:-$(awk '/^URIs:/{print $2; exit} /^deb /{print $2; exit}' /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list 2>/dev/null | head -1)}
MIRROR=${MIRROR:-http://deb.debian.org/debian}
# HTCondor 25.0's runtime libraries (../shared/htcondor/README), Python for condor_docker,
# sshd for the optional access-point login, procps for admins.
PACKAGES=libcurl4,libgomp1,libkrb5-3,libgssapi-krb5-2,libpcre2-8-0,libsqlite3-0,libssl3,libuuid1,libexpat1,python3,python3-venv,openssh-server,openssh-client,ca-certificates,procps

if docker image inspect "$IMAGE" >/dev/null 2>&1; then
    echo "pool-base-image: $IMAGE already present"
    exit 0
fi
if ! command -v debootstrap >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap
fi
ROOT=$(mktemp -d /var/tmp/condor-docker-pool-base.XXXXXX)
trap 'rm -rf "$ROOT"' EXIT
echo "pool-base-image: debootstrap bookworm from $MIRROR into $ROOT"
debootstrap --variant=minbase --include="$PACKAGES" bookworm "$ROOT" "$MIRROR" >"$ROOT.log" 2>&1 || {
    tail -30 "$ROOT.log"; rm -f "$ROOT.log"; exit 1; }
rm -f "$ROOT.log"
rm -rf "$ROOT"/var/cache/apt/archives/*.deb "$ROOT"/var/lib/apt/lists/*
tar -C "$ROOT" --numeric-owner -c . | docker import -c 'CMD ["/bin/bash"]' - "$IMAGE" >/dev/null
echo "pool-base-image: built $IMAGE"
