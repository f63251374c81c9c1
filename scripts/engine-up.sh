#!/usr/bin/env bash
# Bring up, idempotently, everything the tests and the demo need on this machine:
#   - Debian's docker.io, docker-registry and busybox-static (installed if missing)
#   - a dockerd with no bridge and no iptables (containers get network none/host only)
#   - a registry on 127.0.0.1:5000 (no auth, loopback only)
#   - the test images, built from busybox-static with `docker import` (no Docker Hub)
# It starts only what is not already answering, and records what it started in
# $STATE/started so scripts/engine-down.sh stops only that.
set -euo pipefail

STATE=${CONDOR_DOCKER_TEST_STATE:-/var/lib/condor_docker-test}
REGISTRY=127.0.0.1:5000
TEST_IMAGE=$REGISTRY/condor-docker-test/busybox:1
LOCAL_IMAGE=condor-docker-test/busybox:local
mkdir -p "$STATE"

log() { printf 'engine-up: %s\n' "$*" >&2; }

need_packages=()
command -v dockerd >/dev/null || need_packages+=(docker.io)
command -v docker-registry >/dev/null || need_packages+=(docker-registry)
command -v curl >/dev/null || need_packages+=(curl)
[ -x /bin/busybox ] || need_packages+=(busybox-static)
if [ ${#need_packages[@]} -gt 0 ]; then
  log "installing ${need_packages[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${need_packages[@]}" >/dev/null
fi
if ! /bin/busybox --list 2>/dev/null | grep -qx sh || ldd /bin/busybox >/dev/null 2>&1; then
  # docker-registry may pull in the dynamic busybox; the image needs the static one.
  log "installing busybox-static"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi

docker_ok() { timeout 10 docker info >/dev/null 2>&1; }

if ! docker_ok; then
  log "starting dockerd (--bridge=none --iptables=false)"
  # a dead daemon may have left its pid file behind
  rm -f /var/run/docker.pid
  nohup dockerd --bridge=none --iptables=false --ip-masq=false --ip-forward=false \
      --host=unix:///var/run/docker.sock >"$STATE/dockerd.log" 2>&1 &
  echo dockerd >>"$STATE/started"
  for _ in $(seq 1 60); do docker_ok && break; sleep 0.5; done
  docker_ok || { log "dockerd did not come up; see $STATE/dockerd.log"; tail -20 "$STATE/dockerd.log" >&2; exit 1; }
fi

registry_ok() { curl -fsS -o /dev/null --max-time 5 "http://$REGISTRY/v2/"; }

if ! registry_ok; then
  log "starting docker-registry on $REGISTRY"
  mkdir -p "$STATE/registry"
  cat >"$STATE/registry.yml" <<YML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $STATE/registry
  delete:
    enabled: true
http:
  addr: $REGISTRY
YML
  nohup docker-registry serve "$STATE/registry.yml" >"$STATE/registry.log" 2>&1 &
  echo $! >"$STATE/registry.pid"
  echo registry >>"$STATE/started"
  for _ in $(seq 1 40); do registry_ok && break; sleep 0.25; done
  registry_ok || { log "registry did not come up; see $STATE/registry.log"; exit 1; }
fi

built=0
if ! docker image inspect "$LOCAL_IMAGE" >/dev/null 2>&1; then
  log "building $LOCAL_IMAGE from busybox-static"
  root=$(mktemp -d)
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/bin" "$root/tmp" "$root/var/tmp" "$root/etc" "$root/proc" "$root/sys" "$root/dev"
  chmod 1777 "$root/tmp" "$root/var/tmp"
  cp /bin/busybox "$root/bin/busybox"
  for applet in $(/bin/busybox --list); do [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
  tar -C "$root" -c . | docker import \
      --change 'CMD ["/bin/sh", "-c", "echo hello from the image default command"]' \
      --change 'ENV PATH=/bin' - "$LOCAL_IMAGE" >/dev/null
  built=1
fi

if [ "$built" = 1 ] || ! curl -fsS -o /dev/null -I \
     -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
     "http://$REGISTRY/v2/condor-docker-test/busybox/manifests/1"; then
  log "pushing $TEST_IMAGE to the local registry"
  docker tag "$LOCAL_IMAGE" "$TEST_IMAGE"
  docker push "$TEST_IMAGE" >/dev/null
  docker rmi "$TEST_IMAGE" >/dev/null
fi
log "ready: engine $(docker version --format '{{.Server.Version}}'), registry $REGISTRY, images $LOCAL_IMAGE and $TEST_IMAGE"
