#!/usr/bin/env bash
# Build (once) the cgroup-v2 test guest: Debian 12 from Debian's packages alone.
#
#   bash scripts/vm/build-guest.sh        # prints the guest's directory (last line of stdout)
#
# The guest is a raw ext4 disk made with `mkfs.ext4 -d` from a debootstrap folder, plus
# the kernel and initrd from its /boot for qemu's direct kernel boot. It runs systemd
# (cgroup v2 unified), sshd, docker.io (systemd cgroup driver), has HTCondor 25.0 and
# 25.13 unpacked under /opt/condor_docker and a venv /opt/condor_docker/venv holding the
# project's dependencies (wheels fetched on the host; the guest never reaches a network).
# The project itself is NOT in the image: tests/vm/vmfixture.py builds its wheel from the
# checkout under test and installs it at boot, so the guest always runs the current code.
#
# Cached under $CONDOR_DOCKER_VM_CACHE (/var/lib/condor_docker-test/vm)/guest-<hash>,
# where <hash> covers this script, guest-packages.txt, guest-requirements.txt,
# provision-guest.sh, scripts/engine-up.sh and the HTCondor tarballs: a run with an
# unchanged recipe only prints the directory. The last step boots the new disk once
# (tests/vm/vmfixture.py provision) to run provision-guest.sh in it. Building
# replaces older guest-* dirs. Needs root, debootstrap, e2fsprogs and network to
# Debian's archive and PyPI (for the first build only). Exit 3: cannot build here.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
CACHE=${CONDOR_DOCKER_VM_CACHE:-/var/lib/condor_docker-test/vm}
MIRROR=${CONDOR_DOCKER_VM_MIRROR:-http://deb.debian.org/debian}
SECURITY_MIRROR=${CONDOR_DOCKER_VM_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
HOST_VENV=${VENV:-/opt/condor_docker/venv}
SUITE=bookworm
DISK_HEADROOM_MB=${CONDOR_DOCKER_VM_HEADROOM_MB:-4096}   # free space in the guest's root fs

log() { printf 'build-guest: %s\n' "$*" >&2; }
step_started=$(date +%s); steps=""
step() {   # step NAME: close the running step's timer (for the manifest), start the next
  local now; now=$(date +%s)
  steps="$steps $1=$((now - step_started))s"; step_started=$now
}
die() { log "$*"; exit "${2:-1}"; }

[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, chroot)" 3

# -- the HTCondor tarballs the guest carries (both series when present) -------------------
htcondor_dir=${CONDOR_DOCKER_VM_HTCONDOR_DIR:-}
if [ -z "$htcondor_dir" ]; then
  for candidate in "$(dirname "$repo")/shared/htcondor" /work/shared/htcondor; do
    if ls "$candidate"/htcondor-*-x86_64.tar.* >/dev/null 2>&1; then htcondor_dir=$candidate; break; fi
  done
fi
[ -n "$htcondor_dir" ] || die "no HTCondor tarballs (set CONDOR_DOCKER_VM_HTCONDOR_DIR)" 3
tarballs=$(ls -1 "$htcondor_dir"/htcondor-*-x86_64.tar.* | sort)

# -- the recipe and its hash ----------------------------------------------------------------
packages=$(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$here/guest-packages.txt" | grep -v '^$' | tr '\n' ' ')
recipe=$( {
  sha256sum "$here/build-guest.sh" "$here/guest-packages.txt" "$here/guest-requirements.txt" \
            "$here/provision-guest.sh" "$repo/scripts/engine-up.sh" | cut -d' ' -f1
  for t in $tarballs; do echo "$(basename "$t") $(sha256sum "$t" | cut -d' ' -f1)"; done
} | sha256sum | cut -c1-16)
out="$CACHE/guest-$recipe"
if [ -f "$out/READY" ]; then
  echo "$out"
  exit 0
fi

for tool in debootstrap mkfs.ext4 chroot unshare ssh-keygen qemu-system-x86_64 qemu-img; do
  command -v "$tool" >/dev/null || need_install=1
done
if [ -n "${need_install:-}" ]; then
  log "installing debootstrap e2fsprogs openssh-client qemu-system-x86 qemu-utils"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null && apt-get install -y -qq debootstrap e2fsprogs openssh-client \
    qemu-system-x86 qemu-utils >/dev/null || die "cannot install debootstrap and qemu" 3
fi
[ -x "$HOST_VENV/bin/pip" ] || die "no host venv at $HOST_VENV to fetch the guest's wheels (make install)" 3

mkdir -p "$CACHE"
chmod 0700 "$CACHE"
exec 9>"$CACHE/.build.lock"
flock 9                                      # one build at a time; a waiting one reuses it
if [ -f "$out/READY" ]; then echo "$out"; exit 0; fi

started=$(date +%s)
work=$(mktemp -d "$CACHE/.build-$recipe-XXXXXX")
root="$work/root"
cleanup() {
  # the chroot's mounts live in a private mount namespace (unshare -m): nothing to unmount
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$CACHE/debs" "$work/out"
export TMPDIR="$work"                        # nothing of the build goes to /tmp

# -- 1. debootstrap minbase ------------------------------------------------------------------
log "debootstrap $SUITE (minbase) from $MIRROR"
debootstrap --variant=minbase --cache-dir="$CACHE/debs" --include=ca-certificates \
  "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
  || { tail -30 "$work/debootstrap.log" >&2; die "debootstrap failed"; }

step debootstrap

# -- 2. the project's dependencies as wheels (the host's pip reaches PyPI) ------------------
log "pip download the guest's wheels"
mkdir -p "$root/opt/condor_docker/wheels"
# the host venv's Python is Debian 12's python3, like the guest's: its wheels fit the guest
"$HOST_VENV/bin/pip" download -q --disable-pip-version-check --no-cache-dir --only-binary=:all: \
  -d "$root/opt/condor_docker/wheels" -r "$here/guest-requirements.txt" >"$work/pip.log" 2>&1 \
  || { tail -30 "$work/pip.log" >&2; die "pip download of the guest's wheels failed"; }
cp "$here/guest-requirements.txt" "$root/opt/condor_docker/wheels/requirements.txt"

# -- 3. HTCondor, unpacked as scripts/htcondor-up.sh does --------------------------------
for t in $tarballs; do
  name=$(basename "$t"); name=${name%%.tar.*}
  version=$(echo "$name" | sed -E 's/^htcondor-([0-9]+\.[0-9]+\.[0-9]+).*/\1/')
  log "unpacking $name"
  mkdir -p "$work/unpack"
  tar -xf "$t" -C "$work/unpack"
  top=$(ls -1 "$work/unpack")
  [ -x "$work/unpack/$top/sbin/condor_master" ] || die "$t holds no */sbin/condor_master"
  chmod -R a+rX,go-w "$work/unpack/$top"
  mv "$work/unpack/$top" "$root/opt/condor_docker/htcondor-$version"
  rmdir "$work/unpack"
done

step wheels+htcondor

# -- 4. packages and configuration inside the chroot --------------------------------------
ssh-keygen -q -t ed25519 -N '' -C condor-docker-vm -f "$work/out/id_ed25519"
mkdir -p "$root/root/.ssh"
chmod 0700 "$root/root/.ssh"
cp "$work/out/id_ed25519.pub" "$root/root/.ssh/authorized_keys"
chmod 0600 "$root/root/.ssh/authorized_keys"

cat >"$root/etc/apt/sources.list" <<EOF
deb $MIRROR $SUITE main
deb $MIRROR $SUITE-updates main
deb $SECURITY_MIRROR $SUITE-security main
EOF
printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"   # no service starts in the chroot
chmod 0755 "$root/usr/sbin/policy-rc.d"

cat >"$work/inside.sh" <<'INSIDE'
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8 PATH=/usr/sbin:/usr/bin:/sbin:/bin TMPDIR=/tmp
apt-get update -qq
apt-get install -y -q --no-install-recommends $GUEST_PACKAGES
apt-get clean
rm -rf /var/lib/apt/lists/*

# systemd: a small, quiet boot
echo cdvm >/etc/hostname
printf '127.0.0.1 localhost\n127.0.1.1 cdvm\n' >/etc/hosts
printf '/dev/vda / ext4 rw,relatime,errors=remount-ro 0 1\n' >/etc/fstab
ln -sf /proc/self/mounts /etc/mtab
systemctl set-default multi-user.target
for unit in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
            getty@tty1.service serial-getty@ttyS0.service systemd-timesyncd.service docker-registry.service; do
  systemctl mask "$unit" >/dev/null 2>&1 || true
done
mkdir -p /etc/systemd/journald.conf.d
printf '[Journal]\nStorage=volatile\nRuntimeMaxUse=64M\n' >/etc/systemd/journald.conf.d/10-vm.conf

# network: one NIC on qemu's restricted user-mode net; an address and no route anywhere
mkdir -p /etc/systemd/network
cat >/etc/systemd/network/10-vm.network <<EOF
[Match]
Name=en* eth*
[Network]
Address=10.0.2.15/24
LinkLocalAddressing=no
IPv6AcceptRA=no
EOF
systemctl enable systemd-networkd.service >/dev/null 2>&1
systemctl mask systemd-networkd-wait-online.service >/dev/null 2>&1

# sshd: root with the generated key only
mkdir -p /etc/ssh/sshd_config.d
cat >/etc/ssh/sshd_config.d/10-vm.conf <<EOF
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
MaxSessions 64
MaxStartups 64:30:128
EOF
rm -f /etc/ssh/ssh_host_*
ssh-keygen -q -t ed25519 -N '' -f /etc/ssh/ssh_host_ed25519_key
passwd -l root >/dev/null

# the engine: Debian's docker.io, systemd cgroup driver, no bridge (like scripts/engine-up.sh)
mkdir -p /etc/docker
cat >/etc/docker/daemon.json <<EOF
{
  "exec-opts": ["native.cgroupdriver=systemd"],
  "bridge": "none",
  "iptables": false,
  "ip-masq": false,
  "ip-forward": false
}
EOF
systemctl enable docker.service containerd.service >/dev/null 2>&1

# HTCondor's account and the test users (tests/testusers.py makes the same)
useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group condor
for user in cdtest1 cdtest2; do
  useradd --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group "$user"
done

# the project's venv with its dependencies (the project's wheel comes at boot)
python3 -m venv /opt/condor_docker/venv
/opt/condor_docker/venv/bin/pip install -q --disable-pip-version-check --no-index \
  --find-links /opt/condor_docker/wheels -r /opt/condor_docker/wheels/requirements.txt
/opt/condor_docker/venv/bin/python -c 'import docker, htcondor2, classad2, htchirp, psutil'
chmod -R a+rX,go-w /opt/condor_docker
rm -rf /root/.cache
rm -f /usr/sbin/policy-rc.d
INSIDE
log "apt-get install in the chroot: $(echo "$packages" | wc -w) packages"
cp "$work/inside.sh" "$root/inside.sh"
# a private mount namespace: /proc, /sys, /dev and /tmp of the chroot vanish with it
GUEST_PACKAGES="$packages" unshare -m --propagation private /bin/bash -c '
  set -e
  mount -t proc proc "$1/proc"
  mount -t sysfs sysfs "$1/sys"
  mount --rbind /dev "$1/dev"
  mount -t tmpfs tmpfs "$1/tmp"
  exec chroot "$1" /bin/bash /inside.sh' inside "$root" >"$CACHE/last-build-chroot.log" 2>&1 \
  || { tail -40 "$CACHE/last-build-chroot.log" >&2; die "installing the guest's packages failed"; }

rm -f "$root/inside.sh"
step chroot-packages

# -- 5. kernel, initrd, host key, disk -------------------------------------------------------
kernel=$(ls -1 "$root"/boot/vmlinuz-* | sort -V | tail -n 1)
initrd=$(ls -1 "$root"/boot/initrd.img-* | sort -V | tail -n 1)
cp "$kernel" "$work/out/vmlinuz"
cp "$initrd" "$work/out/initrd.img"
echo "condor-docker-vm $(cut -d' ' -f1,2 "$root/etc/ssh/ssh_host_ed25519_key.pub")" >"$work/out/known_hosts"
{
  echo "recipe $recipe"
  echo "kernel $(basename "$kernel")"
  echo "htcondor $(ls -1 "$root/opt/condor_docker" | grep '^htcondor-' | tr '\n' ' ')"
  echo "docker $(chroot "$root" dpkg-query -W -f='${Version}' docker.io)"
  echo "systemd $(chroot "$root" dpkg-query -W -f='${Version}' systemd)"
  echo "python $(chroot "$root" python3 -c 'import platform; print(platform.python_version())')"
} >"$work/out/manifest"
used_mb=$(du -sm "$root" | cut -f1)
size_mb=$((used_mb + DISK_HEADROOM_MB))
log "mkfs.ext4 -d: ${used_mb} MB of files in a ${size_mb} MB disk"
mkfs.ext4 -q -F -L cdvm -E root_owner=0:0 -d "$root" "$work/out/disk.raw" "${size_mb}M" >&2 \
  || die "mkfs.ext4 -d failed"
rm -rf "$root"
step mkfs

# -- 6. one boot to warm it (engine, AppArmor cache, test registry and images) ---------------
log "provisioning boot"
/usr/bin/python3 "$repo/tests/vm/vmfixture.py" provision "$work/out" >"$CACHE/last-build-provision.log" 2>&1 \
  || { tail -30 "$CACHE/last-build-provision.log" >&2; die "the provisioning boot failed"; }
step provisioning-boot
echo "build_seconds $(( $(date +%s) - started ))" >>"$work/out/manifest"
echo "build_steps$steps" >>"$work/out/manifest"
touch "$work/out/READY"

# replace older guests (each is a few GB) and publish this one
for old in "$CACHE"/guest-*; do
  [ -e "$old" ] && [ "$old" != "$out" ] && rm -rf "$old"
done
rm -rf "$out"
mv "$work/out" "$out"
log "built $out in $(( $(date +%s) - started )) s"
echo "$out"
