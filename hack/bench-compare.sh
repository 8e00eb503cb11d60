#!/usr/bin/env bash
# make bench-compare: measures rrguard's hot paths and rewrites the measured part of
# docs/performance.md (between its bench-compare markers) with what this run printed, and
# README.md's speed table (between its speed markers) with this run's latencies through the
# API server. The figures live there and nowhere else: code comments name benchmarks, not
# their results.
#
#   hack/bench-compare.sh            # BENCHCOUNT, BENCHTIME, LOADBENCH, LOADBENCH_CHANGES,
#                                    # LOADBENCH_DURATION as the Makefile passes them
set -euo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
count=${BENCHCOUNT:-3}
benchtime=${BENCHTIME:-1s}
loadbench=${LOADBENCH:-1}
changes=${LOADBENCH_CHANGES:-1000}
duration=${LOADBENCH_DURATION:-10s}
doc=docs/performance.md
begin='<!-- bench-compare:begin -->'
end='<!-- bench-compare:end -->'
grep -qxF "$begin" "$doc" && grep -qxF "$end" "$doc" || { echo "$doc: no $begin / $end lines" >&2; exit 2; }

readme=README.md
rbegin='<!-- speed:begin (rewritten by make bench-compare) -->'
rend='<!-- speed:end -->'
grep -qxF "$rbegin" "$readme" && grep -qxF "$rend" "$readme" || { echo "$readme: no $rbegin / $rend lines" >&2; exit 2; }

section=$(mktemp)
summary=$(mktemp)
trap 'rm -f "$section" "$summary"' EXIT
{
	echo "$begin"
	echo "Measured $(date -u +%Y-%m-%d) by \`make bench-compare\` on $(nproc) cores (load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)), $($go env GOVERSION)."
	echo
	echo "### Each hot path against its floor"
	echo
	echo "\`hack/benchcompare\`, the median of $count rounds of $benchtime:"
	echo
	echo '```text'
	$go run ./hack/benchcompare -count "$count" -benchtime "$benchtime"
	echo '```'
	echo
	echo "### Admission decisions and analyses at 5,000 nodes"
	echo
	echo '```text'
	$go test -run '^$' -benchmem -benchtime "$benchtime" \
		-bench '^Benchmark(Evaluate|EvaluatePeer|EvaluatePeerNewSelector|EvaluateRacks|EvaluateRacksMove|EvaluateRacksPeer|EvaluateDistinctIDs|EvaluatePolicies|EvaluatePoliciesPeer|PerNodePeers)$' ./pkg/validate/ | grep '^Benchmark'
	$go test -run '^$' -benchmem -benchtime "$benchtime" -bench '^BenchmarkAnalyze300x5000$' ./pkg/bgp/ | grep '^Benchmark'
	$go test -run '^$' -benchmem -benchtime "$benchtime" -bench '^BenchmarkSnapshotAfter(LabelChange|PeerChange)$' ./pkg/cluster/ | grep '^Benchmark'
	echo '```'
	if [ "$loadbench" != 0 ]; then
		$go build -o bin/webhook ./cmd/webhook
		echo
		echo "### Through the API server"
		echo
		echo "\`hack/loadbench -changes $changes\`: bin/webhook and a no-op webhook registered in turn with the real API server, label changes of Nodes and of rack BGPPeers:"
		echo
		echo '```text'
		$go run ./hack/loadbench -changes "$changes" -summary "$summary"
		echo '```'
		echo
		echo "### Straight to the webhook"
		echo
		echo '```text'
		$go run ./hack/loadbench -direct -peers 1 -concurrency 1,64 -duration "$duration"
		echo '```'
	fi
	echo "$end"
} | tee "$section"

# replace FILE BEGIN END SECTION: FILE with the lines from BEGIN to END replaced by SECTION's
# (which holds the marker lines itself).
replace() {
	local tmp
	tmp=$(mktemp)
	awk -v begin="$2" -v end="$3" -v section="$4" '
		$0 == begin { while ((getline line < section) > 0) print line; skip = 1; next }
		$0 == end { skip = 0; next }
		!skip { print }
	' "$1" > "$tmp"
	mv "$tmp" "$1"
	echo "bench-compare: $1 rewritten" >&2
}
replace "$doc" "$begin" "$end" "$section"
if [ -s "$summary" ]; then
	{
		echo "$rbegin"
		echo "Measured $(date -u +%Y-%m-%d) by \`make bench-compare\` on $(nproc) cores: $(cat "$summary")"
		echo "$rend"
	} > "$section"
	replace "$readme" "$rbegin" "$rend" "$section"
fi
