#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
#
# deps.sh: install the Debian packages logbook needs to build, test, check
# and benchmark, if any are missing. Idempotent and silent when everything
# is installed. Runs apt-get non-interactively, through sudo unless root.
#
#   scripts/deps.sh           install what is missing
#   scripts/deps.sh --check   list what is missing; exit 1 if anything is
#
# The Makefile runs this on its own when a library it needs is not found
# (set LB_NO_DEPS=1 to stop it from doing so).
set -euo pipefail

# Everything logbook needs, one Debian package per word. Add new needs here.
LB_DEB_PACKAGES="gcc g++ make pkg-config
liblmdb-dev zlib1g-dev libmsgpack-dev libssl-dev
libcmocka-dev libjansson-dev libsqlite3-dev libdeflate-dev libisal-dev
clang clang-format libclang-rt-14-dev valgrind lmdb-utils python3
python3-dev python3-cffi python3-setuptools python3-pytest python3-msgpack
python3-pip
libmicrohttpd-dev curl chromium wrk
nats-server libnats-dev"

mode=install
case "${1:-}" in
"") ;;
--check) mode=check ;;
-h | --help)
  sed -n '4,10s/^# \{0,1\}//p' "$0"
  exit 0
  ;;
*)
  echo "deps.sh: unknown argument '$1' (try --help)" >&2
  exit 2
  ;;
esac

# A package counts as present when dpkg reports it installed ("install ok
# installed", "hold ok installed"); "config-files" or unknown means missing.
missing=()
for pkg in $LB_DEB_PACKAGES; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  case "$status" in
  *" ok installed") ;;
  *) missing+=("$pkg") ;;
  esac
done

if [ "${#missing[@]}" -eq 0 ]; then
  exit 0
fi

if [ "$mode" = check ]; then
  echo "deps.sh: missing: ${missing[*]}" >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "deps.sh: need root or sudo to install: ${missing[*]}" >&2
  exit 1
fi

echo "deps.sh: installing ${missing[*]}" >&2
# sudo resets the environment, so pass DEBIAN_FRONTEND through env(1). Wait
# for a dpkg lock held by another apt run instead of failing at once.
apt=("${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -q
  -o DPkg::Lock::Timeout=600)
# A failed update (say, one unreachable mirror) need not be fatal: the
# install below reports what it cannot find.
"${apt[@]}" update || echo "deps.sh: apt-get update failed; trying to install anyway" >&2
"${apt[@]}" install -y --no-install-recommends "${missing[@]}"
