#!/usr/bin/env bash
# Release archives of the CLI (`make dist`), for linux and darwin on amd64 and arm64:
#
#   dist/rrguard_VERSION_OS_ARCH.tar.gz           rrguard
#   dist/kubectl-rrguard_VERSION_OS_ARCH.tar.gz   kubectl-rrguard (the same binary: as that name
#                                                 it is kubectl's plugin) and
#                                                 kubectl_complete-rrguard (kubectl's completion hook)
#   dist/checksums.txt                            sha256 of every archive (sha256sum -c)
#   dist/rrguard.yaml                             the krew manifest (hack/krew/rrguard.yaml) with
#                                                 the kubectl-rrguard archives' sha256
#
#   hack/dist.sh OUTDIR VERSION     PLATFORMS="linux/amd64 ..." to build fewer; RELEASE_URL is
#                                   where the archives will be downloaded from
# Each binary is built by hack/build.sh (static, -trimpath, version and commit stamped).
set -euo pipefail
out=${1:?usage: hack/dist.sh OUTDIR VERSION}
version=${2:?usage: hack/dist.sh OUTDIR VERSION}
platforms=${PLATFORMS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64}
release_url=${RELEASE_URL:-https://github.com/rrguard/rrguard/releases/download/${version}}
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

sha256() { sha256sum "$1" | cut -d' ' -f1; }
krew_platforms=
for p in $platforms; do
  os=${p%/*} arch=${p#*/}
  start=$(date +%s)
  build="$work/build-$os-$arch"
  CMDS=rrguard GOOS=$os GOARCH=$arch "$root/hack/build.sh" "$build" "$version" >/dev/null
  cli="$work/rrguard_${version}_${os}_${arch}" plugin="$work/kubectl-rrguard_${version}_${os}_${arch}"
  mkdir -p "$cli" "$plugin"
  cp "$build/rrguard" "$cli/rrguard"
  cp "$build/rrguard" "$plugin/kubectl-rrguard"
  printf '#!/bin/sh\n# kubectl (1.26+) runs this to complete `kubectl rrguard ...`: keep it on the PATH.\nexec kubectl-rrguard __complete "$@"\n' >"$plugin/kubectl_complete-rrguard"
  chmod 0755 "$cli/rrguard" "$plugin/kubectl-rrguard" "$plugin/kubectl_complete-rrguard"
  for dir in "$cli" "$plugin"; do
    name=$(basename "$dir")
    # Reproducible: fixed owner, order and times.
    tar --sort=name --owner=0 --group=0 --numeric-owner --mtime='2000-01-01 00:00Z' \
      -C "$dir" -cf - $(ls "$dir") | gzip -n >"$out/$name.tar.gz"
  done
  sum=$(sha256 "$out/kubectl-rrguard_${version}_${os}_${arch}.tar.gz")
  krew_platforms+="    - selector:
        matchLabels: {os: $os, arch: $arch}
      uri: $release_url/kubectl-rrguard_${version}_${os}_${arch}.tar.gz
      sha256: $sum
      bin: kubectl-rrguard
      files:
        - {from: kubectl-rrguard, to: .}
        - {from: kubectl_complete-rrguard, to: .}
"
  echo "dist: $os/$arch in $(($(date +%s) - start))s"
done
(cd "$out" && sha256sum -- *.tar.gz >checksums.txt)
awk -v version="$version" -v platforms="${krew_platforms%$'\n'}" '
  /^#/ && !body { next }
  { body = 1 }
  /@PLATFORMS@/ { print platforms; next }
  { gsub("@VERSION@", version); print }
' "$root/hack/krew/rrguard.yaml" >"$out/rrguard.yaml"
if ! [[ $version =~ ^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$ ]]; then
  echo "dist: note: krew takes only a semantic version (v1.2.3): $version is fine for testing, not to publish rrguard.yaml" >&2
fi
ls -l "$out"
