#!/usr/bin/env bash
# Builds rrguard's two binaries, webhook and rrguard, as the image ships them: static
# (CGO_ENABLED=0), reproducible paths (-trimpath), version and commit stamped into main.version
# and main.commit.
# The Dockerfile runs this script, and test/deploy runs it too, so the image's build is tested.
#
#   hack/build.sh OUTDIR [VERSION]     (VERSION defaults to `git describe`, else "dev")
#
# GOOS/GOARCH from the environment cross-compile (the Dockerfile sets them per platform);
# CMDS builds fewer (hack/dist.sh: CMDS=rrguard).
set -euo pipefail
out=${1:?usage: hack/build.sh OUTDIR [VERSION]}
version=${2:-$(git describe --tags --always --dirty 2>/dev/null || echo dev)}
cd "$(dirname "$0")/.."
# The commit `rrguard version` prints: $COMMIT, else the checkout's (none in the Docker context).
commit=${COMMIT:-$(git rev-parse --short=12 HEAD 2>/dev/null || true)}
export CGO_ENABLED=0
for cmd in ${CMDS:-webhook rrguard}; do
  go build -trimpath -ldflags "-s -w -X main.version=${version} -X main.commit=${commit}" -o "${out}/${cmd}" "./cmd/${cmd}"
done
