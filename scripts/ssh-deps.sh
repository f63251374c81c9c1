#!/usr/bin/env bash
# Install what condor_ssh_to_job needs on a test machine (idempotent): openssh-server
# (the starter runs /usr/sbin/sshd as the job's user) and openssh-client (the tool runs
# ssh/sftp/scp).  A policy-rc.d that exits 101 keeps Debian from starting a system sshd
# during the install; it is removed again if we put it there.
set -euo pipefail
# sshd -t as root wants its privilege separation dir (a system sshd would make it at start)
install -d -m 0755 /run/sshd
if [ -x /usr/sbin/sshd ] && command -v ssh >/dev/null && command -v sftp >/dev/null; then
  exit 0
fi
policy=/usr/sbin/policy-rc.d
ours=no
if [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' > "$policy"
  chmod 0755 "$policy"
  ours=yes
fi
trap '[ "$ours" = yes ] && rm -f "$policy"' EXIT
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends openssh-server openssh-client >/dev/null 2>&1; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends openssh-server openssh-client >/dev/null
fi
test -x /usr/sbin/sshd
