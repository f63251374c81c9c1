#!/usr/bin/env bash
# Bring up, idempotently, rootful Podman's Docker-compatible API for the engine tests
# (tests/engine run each case on Docker and on Podman; docs/ENGINES.md says what a site does):
#   - Debian's podman, catatonit (its --init), uidmap, slirp4netns, fuse-overlayfs (installed if missing)
#   - the containers.conf drop-in with explicit rlimits (this sandbox refuses podman's defaults)
#   - the loopback test registry marked insecure (plain http)
#   - `podman system service` on $CONDOR_DOCKER_TEST_PODMAN_URL's socket (recorded in
#     $STATE/started, like scripts/engine-up.sh)
# Exit 3: Podman cannot be installed here (the Podman cases then skip and say so).
set -euo pipefail

STATE=${CONDOR_DOCKER_TEST_STATE:-/var/lib/condor_docker-test}
URL=${CONDOR_DOCKER_TEST_PODMAN_URL:-unix:///run/condor_docker-test-podman/podman.sock}
SOCKET=${URL#unix://}
mkdir -p "$STATE"

log() { printf 'podman-up: %s\n' "$*" >&2; }

need=()
command -v podman >/dev/null || need+=(podman uidmap slirp4netns fuse-overlayfs)
[ -x /usr/libexec/podman/catatonit ] || need+=(catatonit)
if [ ${#need[@]} -gt 0 ]; then
  log "installing ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq >/dev/null && apt-get install -y -qq "${need[@]}" >/dev/null; }; then
    log "cannot install ${need[*]}: the Podman engine cases will skip"
    exit 3
  fi
fi

DROPIN=/etc/containers/containers.conf.d/50-condor-docker.conf
if [ ! -e "$DROPIN" ]; then
  mkdir -p "$(dirname "$DROPIN")"
  printf '[containers]\ndefault_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]\n' >"$DROPIN"
  log "wrote $DROPIN"
fi
REGISTRIES=/etc/containers/registries.conf
if ! grep -qs 'location = "127.0.0.1:5000"' "$REGISTRIES"; then
  printf '\n[[registry]]\nlocation = "127.0.0.1:5000"\ninsecure = true\n' >>"$REGISTRIES"
  log "marked 127.0.0.1:5000 insecure in $REGISTRIES"
fi

podman_ok() { curl -fsS --max-time 10 --unix-socket "$SOCKET" http://d/_ping >/dev/null 2>&1; }

if ! podman_ok; then
  log "starting podman system service on $SOCKET"
  mkdir -p "$(dirname "$SOCKET")"
  rm -f "$SOCKET"
  # from $STATE: Podman 4.3's conmon writes an `oom` file into the service's cwd when a
  # container is OOM-killed (seen as a stray ./oom in the checkout the service was started from)
  ( cd "$STATE" && exec setsid podman system service --time=0 "unix://$SOCKET" >"$STATE/podman.log" 2>&1 < /dev/null ) &
  echo podman >>"$STATE/started"
  for _ in $(seq 1 60); do podman_ok && break; sleep 0.5; done
  podman_ok || { log "podman's API did not come up; see $STATE/podman.log"; tail -20 "$STATE/podman.log" >&2; exit 1; }
fi
log "ready: $(podman version --format '{{.Server.Version}}' 2>/dev/null || echo podman) at $URL"
