#!/usr/bin/env bash
# Provides the test control plane, at pinned versions:
#   kube-apiserver v1.37.2, kubectl v1.37.2   (wrapper module ./kubernetes)
#   etcd v3.6.16                              (wrapper module ./etcd)
#   calicoctl v3.31.0                         (wrapper module ./calicoctl)
#   confd v3.31.0                             (wrapper module ./confd)
#   calico-apiserver v3.31.0                  (wrapper module ./calico-apiserver)
# Prebuilt binaries first, where they can be had: kube-apiserver, etcd and kubectl from
# controller-runtime's setup-envtest (pinned; ENVTEST_INDEX_URL), calicoctl from Calico's release
# (CALICOCTL_URL); confd and calico-apiserver have no release binary (Calico ships them only in
# its images) and are always built. When a download fails (no internet access: every time) the
# binary is built from the Go module proxy instead; a host that cannot be reached fails within
# DOWNLOAD_CONNECT_TIMEOUT seconds (default 3).
# Each binary is kept in a per-user cache keyed by name and version,
#   ${XDG_CACHE_HOME:-$HOME/.cache}/rrguard/controlplane/<name>-<version>/<name>   (built)
#   ${XDG_CACHE_HOME:-$HOME/.cache}/rrguard/controlplane/prebuilt-<version>/<name> (downloaded)
# and symlinked into bin/ (or --bin DIR). A binary is rebuilt only when its wrapper module
# (go.mod, go.sum) or its build flags change, or with --force (which also skips the downloads;
# --source skips them only). Builds run one at a time, kube-apiserver first.
# Measured source builds, modules downloaded, empty Go build cache: on 2 idle cores
# kube-apiserver 5m26s, then kubectl 0m35s, etcd 0m41s, calicoctl 1m20s (they reuse its
# packages); on 2 busy cores 15m to 20m30s, 1m06s to 1m42s, 1m20s to 1m26s and up to 9m46s.
#
# confd and calico-apiserver after those, in the same Go build cache, on 2 busy cores: 0m22s
# and 8m35s; alone from an empty Go build cache on 2 very busy cores 11m51s and 24m01s.
#
# Usage: hack/controlplane/build.sh [--force] [--source] [--bin DIR] [name...]
#        (names: kube-apiserver etcd kubectl calicoctl confd calico-apiserver)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
bin=$root/bin
cache=${XDG_CACHE_HOME:-$HOME/.cache}/rrguard/controlplane
go=${GO:-go}

export GOWORK=off CGO_ENABLED=0
# The wrapper modules commit complete go.mod/go.sum: a build never edits them.
export GOFLAGS="-mod=readonly -buildvcs=false"

k8s_version=v1.37.2
etcd_version=v3.6.16
calico_version=v3.31.0
calico_commit=b1f3c43f8437
calico_date=2025-10-21T21:38:02Z
k8s_date=2026-10-27T12:01:04Z # commit time of k8s.io/kubernetes v1.37.2, as the proxy reports it
setup_envtest_version=v0.25.1 # sigs.k8s.io/controller-runtime/tools/setup-envtest
envtest_index=${ENVTEST_INDEX_URL:-https://raw.githubusercontent.com/kubernetes-sigs/controller-tools/HEAD/envtest-releases.yaml}
case $(uname -m) in aarch64 | arm64) arch=arm64 ;; *) arch=amd64 ;; esac
calicoctl_url=${CALICOCTL_URL:-https://github.com/projectcalico/calico/releases/download/$calico_version/calicoctl-linux-$arch}
connect_timeout=${DOWNLOAD_CONNECT_TIMEOUT:-3}

# calico_ldflags: the version stamp of Calico's own builds (lib.Makefile's LDFLAGS).
calico_ldflags() {
	local p=github.com/projectcalico/calico/pkg/buildinfo
	echo "-s -w -X $p.Version=$calico_version -X $p.GitRevision=$calico_commit -X $p.BuildDate=$calico_date"
}

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
		ldflags=$(k8s_ldflags) check=(--version) want="Kubernetes $k8s_version" expect="5 to 21 minutes" ;;
	kubectl)
		version=$k8s_version module=kubernetes pkg=k8s.io/kubernetes/cmd/kubectl
		ldflags=$(k8s_ldflags) check=(version --client) want="Client Version: $k8s_version" expect="about 1 minute" ;;
	etcd)
		version=$etcd_version module=etcd pkg=github.com/rrguard/rrguard/hack/controlplane/etcd
		ldflags="-s -w" check=(--version) want="etcd Version: ${etcd_version#v}" expect="about 1 minute" ;;
	calicoctl)
		version=$calico_version module=calicoctl pkg=github.com/projectcalico/calico/calicoctl/calicoctl
		ldflags=$(calico_ldflags)
		check=(version --client) want="Client Version:    $calico_version" expect="1 to 10 minutes" ;;
	confd)
		# The confd calico-node runs (its -confd mode calls the same confd/pkg/run).
		version=$calico_version module=confd pkg=github.com/projectcalico/calico/confd
		ldflags=$(calico_ldflags)
		check=(-version) want="confd $calico_version" expect="under a minute after calicoctl" ;;
	calico-apiserver)
		# apiserver/Makefile's bin/apiserver-$ARCH; it prints its version before anything else.
		version=$calico_version module=calico-apiserver pkg=github.com/projectcalico/calico/apiserver/cmd/apiserver
		ldflags=$(calico_ldflags)
		check=(--help) want="Version:      $calico_version" expect="3 to 9 minutes" ;;
	*)
		echo "build.sh: unknown binary $1 (want kube-apiserver, etcd, kubectl, calicoctl, confd or calico-apiserver)" >&2
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

# download URL FILE: fetches URL into FILE, failing fast on a host that cannot be reached.
download() {
	command -v curl >/dev/null || { echo "curl not installed" >&2; return 1; }
	curl -fsSL --connect-timeout "$connect_timeout" --max-time 600 -o "$2" "$1"
}

# envtest_fetched: set once setup-envtest has run: ok or failed.
envtest_fetched=

# prebuilt NAME: puts a downloaded binary at $out (and adjusts want for envtest's etcd, whose
# version setup-envtest chooses). Fails, saying why, when it cannot be had.
prebuilt() {
	local name=$1 start=$SECONDS dir err
	case $name in
	kube-apiserver | kubectl | etcd)
		dir=$cache/prebuilt-$k8s_version
		if [[ -z $envtest_fetched && -x $dir/kube-apiserver && -x $dir/etcd && -x $dir/kubectl ]]; then
			envtest_fetched=ok
		elif [[ -z $envtest_fetched ]]; then
			envtest_fetched=failed
			echo "==> kube-apiserver, kubectl, etcd $k8s_version: trying setup-envtest ($envtest_index)"
			# Probe the index before building setup-envtest: offline, this fails in seconds.
			if ! err=$(download "$envtest_index" /dev/null 2>&1); then
				echo "    download failed after $(duration $((SECONDS - start))): ${err:-no answer}"
				return 1
			fi
			local assets
			if ! assets=$("$go" run "sigs.k8s.io/controller-runtime/tools/setup-envtest@$setup_envtest_version" \
				use "${k8s_version#v}" --index "$envtest_index" --bin-dir "$cache/setup-envtest" -p path 2>"$cache/setup-envtest.log"); then
				echo "    setup-envtest failed after $(duration $((SECONDS - start))): $(tail -n 1 "$cache/setup-envtest.log")"
				return 1
			fi
			mkdir -p "$dir"
			cp -f "$assets"/kube-apiserver "$assets"/etcd "$assets"/kubectl "$dir"/ || return 1
			envtest_fetched=ok
			echo "    downloaded in $(duration $((SECONDS - start)))"
		fi
		[[ $envtest_fetched == ok && -x $dir/$name ]] || return 1
		# setup-envtest picks the etcd that goes with the release.
		if [[ $name == etcd ]]; then want="etcd Version:"; fi
		;;
	calicoctl)
		dir=$cache/prebuilt-$calico_version
		if [[ ! -x $dir/$name ]]; then
			echo "==> calicoctl $calico_version: trying Calico's release ($calicoctl_url)"
			mkdir -p "$dir"
			if ! err=$(download "$calicoctl_url" "$dir/$name.tmp" 2>&1); then
				rm -f "$dir/$name.tmp"
				echo "    download failed after $(duration $((SECONDS - start))): ${err:-no answer}"
				return 1
			fi
			chmod +x "$dir/$name.tmp" && mv -f "$dir/$name.tmp" "$dir/$name"
			echo "    downloaded in $(duration $((SECONDS - start)))"
		fi
		;;
	*) return 1 ;; # no prebuilt binary: built from source
	esac
	out=$dir/$name
	echo "==> $name: prebuilt ($out)"
}

# build NAME: makes sure bin/NAME points at a current binary: one built before (its
# fingerprint unchanged), else a prebuilt one, else one built now.
build() {
	local name=$1 version module pkg ldflags check want expect
	describe "$name"
	local dir=$cache/$name-$version
	local out=$dir/$name fp
	fp=$(fingerprint "$name")
	mkdir -p "$dir" "$bin"
	if [[ $force == 0 && -x $out && -f $dir/fingerprint && $(<"$dir/fingerprint") == "$fp" ]]; then
		echo "==> $name $version: up to date ($out)"
	elif [[ $source == 0 ]] && prebuilt "$name"; then
		:
	else
		echo "==> $name $version: building $pkg (module hack/controlplane/$module); expect $expect"
		local log=$dir/build.log start=$SECONDS last=$SECONDS pid
		rm -f "$dir/fingerprint" "$out.tmp"
		# -v names each package as it is compiled: count them for a progress line.
		(cd "$here/$module" && exec "$go" build -v -trimpath -ldflags "$ldflags" -o "$out.tmp" "$pkg") >"$log" 2>&1 &
		pid=$!
		building=$pid
		while kill -0 "$pid" 2>/dev/null; do
			sleep 1
			if ((SECONDS - last >= 30)) && kill -0 "$pid" 2>/dev/null; then
				last=$SECONDS
				echo "    ... $(wc -l <"$log") packages compiled ($(duration $((SECONDS - start))) of $expect; $(duration $((SECONDS - total))) in all)"
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
	echo "    ${bin#"$root"/}/$name -> $out ($(duration $((SECONDS - total))) in all)"
}

# Stop a build in progress when interrupted, instead of leaving it running behind us.
building=
trap '[[ -n $building ]] && kill "$building" 2>/dev/null' EXIT
trap 'exit 130' INT TERM

force=0 source=0
names=()
while (($#)); do
	case $1 in
	--force) force=1 source=1 ;;
	--source) source=1 ;;
	--bin) bin=${2:?--bin needs a directory}; shift ;;
	-h | --help) sed -n '2,/^set /{/^#/p}' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
	*) names+=("$1") ;;
	esac
	shift
done
# kube-apiserver first: it is the long pole, and kubectl then reuses most of its packages.
((${#names[@]})) || names=(kube-apiserver kubectl etcd calicoctl confd calico-apiserver)

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
