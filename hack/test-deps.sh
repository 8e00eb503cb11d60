#!/usr/bin/env bash
# What `make test` needs beyond Go and the control plane of `make controlplane`, installed or
# named. `make test` and .ci/run both run it first.
#
#   test/bird      real BIRD 1.6 in network namespaces: root, Debian's bird (bird, bird6,
#                  birdc, birdc6) and iproute2 (ip)           skip: RRGUARD_SKIP_BIRD=1
#   test/pictures  headless Chromium with the DejaVu fonts     skip: RRGUARD_SKIP_CHROMIUM=1
#   test/deploy    openssl (docs/install.md without cert-manager)
#   make controlplane, hack/controlplane's tests: curl
#
# As root on Debian or Ubuntu it installs what is missing with apt-get, starting no service
# (the tests start their own BIRDs and Chromium). Anywhere else it stops at once, naming the
# packages and the switches. `make unit` needs none of this.
set -euo pipefail
PATH="${PATH}:/usr/sbin:/sbin" # bird and ip live in /usr/sbin on Debian

missing=()
need() { # need PACKAGE COMMAND...: PACKAGE unless every COMMAND is on the PATH
  local pkg=$1
  shift
  for c in "$@"; do
    if ! command -v "$c" >/dev/null 2>&1; then
      missing+=("$pkg")
      return
    fi
  done
}
need make make # .ci/run runs this script before make
need openssl openssl
need curl curl
if [ "${RRGUARD_SKIP_BIRD:-}" != 1 ]; then
  need bird bird bird6 birdc birdc6
  need iproute2 ip
fi
if [ "${RRGUARD_SKIP_CHROMIUM:-}" != 1 ]; then
  need chromium chromium
  [ -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || missing+=(fonts-dejavu-core)
fi

root=
[ "$(id -u)" = 0 ] && root=1
debian=
[ -e /etc/debian_version ] && command -v apt-get >/dev/null 2>&1 && debian=1

if [ "${#missing[@]}" -gt 0 ] && [ -n "$root" ] && [ -n "$debian" ]; then
  echo "test-deps: installing ${missing[*]} (apt-get, no service started)"
  policy_added=
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && policy_added=1
  fi
  trap '[ -z "$policy_added" ] || rm -f /usr/sbin/policy-rc.d' EXIT
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi

problems=()
if [ "${#missing[@]}" -gt 0 ]; then
  problems+=("missing Debian packages: ${missing[*]} (apt-get install ${missing[*]})")
fi
if [ -z "$root" ] && [ "${RRGUARD_SKIP_BIRD:-}" != 1 ]; then
  problems+=("test/bird needs root to create network namespaces")
fi
if [ "${#problems[@]}" -gt 0 ]; then
  {
    echo "make test: cannot run every test here:"
    printf '  - %s\n' "${problems[@]}"
    echo "Run it as root on Debian or Ubuntu (this script then installs the packages), install them"
    echo "yourself, or skip those tests: RRGUARD_SKIP_BIRD=1 (test/bird: bird, iproute2, root),"
    echo "RRGUARD_SKIP_CHROMIUM=1 (test/pictures: chromium, fonts-dejavu-core). \`make unit\` needs none."
  } >&2
  exit 1
fi
