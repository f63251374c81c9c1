#!/usr/bin/env bash
# Make real HTCondors usable for the pool tests (idempotent); print their directories.
#
#   bash scripts/htcondor-up.sh [SOURCE]
#
# SOURCE (or $CONDOR_DOCKER_TEST_HTCONDOR) is an unpacked HTCondor (a dir with
# sbin/condor_master), a tarball, or a dir holding htcondor-*.tar.* tarballs (like
# shared/htcondor/, which holds the LTS and the feature series: every one is
# readied); default: ../shared/htcondor beside the checkout, else
# /work/shared/htcondor. A tarball is unpacked once into
# $CONDOR_DOCKER_HTCONDOR_CACHE (/opt/condor_docker)/htcondor-<version>, which every
# account can read (the daemons drop to the condor user, the tools run as job users).
# Also installs the runtime libraries the binaries need and creates the `condor`
# system user the daemons drop to (CONDOR_IDS). Exit 3 when no HTCondor is found
# (the pool tests skip then); stdout is one install dir per line, oldest version first.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${CONDOR_DOCKER_HTCONDOR_CACHE:-/opt/condor_docker}
LIBS="libcurl4 libgomp1 libkrb5-3 libgssapi-krb5-2 libpcre2-8-0 libsqlite3-0 libssl3 libuuid1 libexpat1"

source=${1:-${CONDOR_DOCKER_TEST_HTCONDOR:-}}
if [ -z "$source" ]; then
  for candidate in "$(dirname "$here")/shared/htcondor" /work/shared/htcondor; do
    if [ -e "$candidate" ]; then source=$candidate; break; fi
  done
fi
if [ -z "$source" ] || [ ! -e "$source" ]; then
  echo "htcondor-up: no HTCondor found (set CONDOR_DOCKER_TEST_HTCONDOR to an install dir or tarball)" >&2
  exit 3
fi

missing_libs() {
  local lib missing=""
  for lib in $LIBS; do
    dpkg-query -W -f='${Status}' "$lib" 2>/dev/null | grep -q "install ok installed" || missing="$missing $lib"
  done
  echo "$missing"
}

ensure_libs() {
  local missing
  missing=$(missing_libs)
  if [ -n "$missing" ]; then
    echo "htcondor-up: installing$missing" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null
  fi
}

ensure_condor_user() {
  if ! getent passwd condor >/dev/null; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin --user-group condor
  fi
}

# unpack_one TARBALL: unpack it once into $CACHE/htcondor-<version>; print that dir.
unpack_one() {
  local tarball=$1 name version install_dir work top
  name=$(basename "$tarball")
  name=${name%%.tar.*}                       # htcondor-25.0.13-debian12-x86_64
  version=$(echo "$name" | sed -E 's/^htcondor-([0-9]+\.[0-9]+\.[0-9]+).*/\1/')
  install_dir="$CACHE/htcondor-$version"
  if [ ! -x "$install_dir/sbin/condor_master" ]; then
    mkdir -p "$CACHE"
    exec 9>"$CACHE/.htcondor-up.lock"
    flock 9                                  # other sessions may unpack at the same time
    if [ ! -x "$install_dir/sbin/condor_master" ]; then
      work=$(mktemp -d "$CACHE/.unpack-XXXXXX")
      tar -xf "$tarball" -C "$work"
      top=$(ls -1 "$work")
      if [ "$(echo "$top" | wc -l)" -ne 1 ] || [ ! -x "$work/$top/sbin/condor_master" ]; then
        rm -rf "$work"
        echo "htcondor-up: $tarball does not hold one htcondor-*/sbin/condor_master" >&2
        exit 3
      fi
      chmod -R a+rX,go-w "$work/$top"
      rm -rf "$install_dir"
      mv "$work/$top" "$install_dir"
      rmdir "$work"
    fi
    flock -u 9
  fi
  echo "$install_dir"
}

installs=()
if [ -d "$source" ] && [ -x "$source/sbin/condor_master" ]; then
  installs=("$(cd "$source" && pwd)")
elif [ -d "$source" ]; then
  tarballs=$(ls -1 "$source"/htcondor-*.tar.* 2>/dev/null | sort -V || true)
  if [ -z "$tarballs" ]; then
    echo "htcondor-up: $source holds neither sbin/condor_master nor an htcondor-*.tar.* tarball" >&2
    exit 3
  fi
  for tarball in $tarballs; do installs+=("$(unpack_one "$tarball")"); done
else
  installs=("$(unpack_one "$source")")
fi

if [ "$(id -u)" -eq 0 ]; then
  ensure_libs
  ensure_condor_user
fi
for install_dir in "${installs[@]}"; do
  "$install_dir/bin/condor_config_val" -version >/dev/null 2>&1 || {
    echo "htcondor-up: $install_dir/bin/condor_config_val does not run (missing libraries? $LIBS)" >&2
    exit 1
  }
  echo "$install_dir"
done
