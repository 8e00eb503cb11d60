#!/usr/bin/env bash
# Builds the test control plane from the Go module proxy, at pinned versions:
#   kube-apiserver v1.37.2, kubectl v1.37.2   (wrapper module ./kubernetes)
#   etcd v3.6.16                              (wrapper module ./etcd)
#   calicoctl v3.31.0                         (wrapper module ./calicoctl)
# Each binary is built once into a per-user cache keyed by name and version,
#   ${XDG_CACHE_HOME:-$HOME/.cache}/rrguard/controlplane/<name>-<version>/<name>
# and symlinked into bin/. A binary is rebuilt only when its wrapper module (go.mod, go.sum)
# or its build flags change, or with --force. Builds run one at a time, kube-apiserver first.
# Measured on 2 cores with the modules already downloaded and an empty Go build cache:
# kube-apiserver 5m26s, then kubectl 0m35s, etcd 0m41s, calicoctl 1m20s (they reuse its packages).
#
# Usage: hack/controlplane/build.sh [--force] [name...]   (names: kube-apiserver etcd kubectl calicoctl)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$root/bin
cache=${XDG_CACHE_HOME:-$HOME/.cache}/rrguard/controlplane
go=${GO:-go}

export GOWORK=off CGO_ENABLED=0
export GONOSUMDB=github.com/projectcalico${GONOSUMDB:+,$GONOSUMDB}
# The wrapper modules commit complete go.mod/go.sum: a build never edits them.
export GOFLAGS="-mod=readonly -buildvcs=false"

k8s_version=v1.37.2
etcd_version=v3.6.16
calico_version=v3.31.0
calico_commit=b1f3c43f8437
calico_date=2025-10-21T21:38:02Z
k8s_date=2026-10-27T12:01:04Z # commit time of k8s.io/kubernetes v1.37.2, as the proxy reports it

k8s_ldflags() {
	local p flags="-s -w"
	for p in k8s.io/client-go/pkg/version k8s.io/component-base/version; do
		flags+=" -X $p.gitVersion=$k8s_version -X $p.gitMajor=1 -X $p.gitMinor=37"
		flags+=" -X $p.gitTreeState=clean -X $p.buildDate=$k8s_date"
	done
	echo "$flags"
}

# describe NAME: sets version, module, pkg, ldflags and check (a command whose output must
# contain want) for one binary.
describe() {
	case $1 in
	kube-apiserver)
		version=$k8s_version module=kubernetes pkg=k8s.io/kubernetes/cmd/kube-apiserver
		ldflags=$(k8s_ldflags) check=(--version) want="Kubernetes $k8s_version" ;;
	kubectl)
		version=$k8s_version module=kubernetes pkg=k8s.io/kubernetes/cmd/kubectl
		ldflags=$(k8s_ldflags) check=(version --client) want="Client Version: $k8s_version" ;;
	etcd)
		version=$etcd_version module=etcd pkg=github.com/rrguard/rrguard/hack/controlplane/etcd
		ldflags="-s -w" check=(--version) want="etcd Version: ${etcd_version#v}" ;;
	calicoctl)
		version=$calico_version module=calicoctl pkg=github.com/projectcalico/calico/calicoctl/calicoctl
		ldflags="-s -w"
		ldflags+=" -X github.com/projectcalico/calico/pkg/buildinfo.Version=$calico_version"
		ldflags+=" -X github.com/projectcalico/calico/pkg/buildinfo.GitRevision=$calico_commit"
		ldflags+=" -X github.com/projectcalico/calico/pkg/buildinfo.BuildDate=$calico_date"
		check=(version --client) want="Client Version:    $calico_version" ;;
	*)
		echo "build.sh: unknown binary $1 (want kube-apiserver, etcd, kubectl or calicoctl)" >&2
		exit 2 ;;
	esac
}

# fingerprint: what the binary is built from. Kept beside the binary; a mismatch rebuilds.
fingerprint() {
	{
		echo "$1 $version $pkg CGO_ENABLED=$CGO_ENABLED -trimpath"
		echo "$ldflags"
		cat "$here/$module/go.mod" "$here/$module/go.sum"
	} | sha256sum | cut -d' ' -f1
}

duration() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }

# build NAME: makes sure $cache/NAME-VERSION/NAME is current and bin/NAME points at it.
build() {
	local name=$1 version module pkg ldflags check want
	describe "$name"
	local dir=$cache/$name-$version
	local out=$dir/$name fp
	fp=$(fingerprint "$name")
	mkdir -p "$dir" "$bin"
	if [[ $force == 0 && -x $out && -f $dir/fingerprint && $(<"$dir/fingerprint") == "$fp" ]]; then
		echo "==> $name $version: up to date ($out)"
	else
		echo "==> $name $version: building $pkg (module hack/controlplane/$module)"
		[[ $name == kube-apiserver ]] && echo "    this takes 5 to 9 minutes on 2 cores when nothing is cached yet"
		local log=$dir/build.log start=$SECONDS pid
		rm -f "$dir/fingerprint" "$out.tmp"
		# -v names each package as it is compiled: count them for a progress line.
		(cd "$here/$module" && exec "$go" build -v -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg") >"$log" 2>&1 &
		pid=$!
		building=$pid
		while kill -0 "$pid" 2>/dev/null; do
			sleep 5
			if (((SECONDS - start) % 30 < 5)) && kill -0 "$pid" 2>/dev/null; then
				echo "    ... $(wc -l <"$log") packages compiled ($(duration $((SECONDS - start))))"
			fi
		done
		building=
		if ! wait "$pid" || [[ ! -x $out.tmp ]]; then
			echo "!!! $name $version: build failed; last lines of $log:" >&2
			tail -n 30 "$log" >&2
			exit 1
		fi
		mv -f "$out.tmp" "$out"
		echo "$fp" >"$dir/fingerprint"
		{
			echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in $(duration $((SECONDS - start)))"
			"$go" version
		} >"$dir/build-info"
		echo "    built in $(duration $((SECONDS - start))), $(du -h "$out" | cut -f1)"
	fi
	local got
	got=$("$out" "${check[@]}" 2>&1 || true)
	if [[ $got != *"$want"* ]]; then
		echo "!!! $out ${check[*]}: want \"$want\", got:" >&2
		echo "$got" >&2
		exit 1
	fi
	ln -sfn "$out" "$bin/$name"
	echo "    bin/$name -> $out"
}

# Stop a build in progress when interrupted, instead of leaving it running behind us.
building=
trap '[[ -n $building ]] && kill "$building" 2>/dev/null' EXIT
trap 'exit 130' INT TERM

force=0
names=()
for arg in "$@"; do
	case $arg in
	--force) force=1 ;;
	-h | --help) sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) names+=("$arg") ;;
	esac
done
# kube-apiserver first: it is the long pole, and kubectl then reuses most of its packages.
((${#names[@]})) || names=(kube-apiserver kubectl etcd calicoctl)

mkdir -p "$cache"
# One build at a time, also across concurrent invocations (two `make test` in parallel).
exec 9>"$cache/.lock"
if ! flock -n 9; then
	echo "==> waiting for another hack/controlplane/build.sh to finish ($cache/.lock)"
	flock 9
fi
total=$SECONDS
for name in "${names[@]}"; do
	build "$name"
done
echo "==> control plane ready in bin/ ($(duration $((SECONDS - total))))"
