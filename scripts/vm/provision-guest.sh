#!/usr/bin/env bash
# Runs once INSIDE the freshly built guest (tests/vm/vmfixture.py provision, called by
# build-guest.sh), so that every later boot starts warm: the engine's first start, the
# AppArmor cache, and the test registry and images of scripts/engine-up.sh are then in
# the cached disk. engine-up.sh runs again at each boot (it only restarts the registry).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
systemctl is-system-running --wait >/dev/null || true
bash "$here/engine-up.sh"
# the registry runs from engine-up.sh's nohup, not as a unit: stop it, engine-up starts it at boot
if [ -f /var/lib/condor_docker-test/registry.pid ]; then
  kill "$(cat /var/lib/condor_docker-test/registry.pid)" 2>/dev/null || true
fi
rm -f /var/lib/condor_docker-test/started /var/lib/condor_docker-test/registry.pid
docker image ls --format '{{.Repository}}:{{.Tag}}' | sort
/opt/condor_docker/venv/bin/python -c 'import docker, htcondor2, classad2, htchirp, psutil'
rm -rf "$here"
sync
