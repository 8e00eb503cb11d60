#!/usr/bin/env bash
# make bench-compare: measures rrguard's hot paths and rewrites the measured part of
# docs/performance.md (between its bench-compare markers) with what this run printed. The
# figures live there and nowhere else: code comments name benchmarks, not their results.
#
#   hack/bench-compare.sh            # BENCHCOUNT, BENCHTIME, LOADBENCH, LOADBENCH_CHANGES,
#                                    # LOADBENCH_DURATION as the Makefile passes them
set -euo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
count=${BENCHCOUNT:-3}
benchtime=${BENCHTIME:-1s}
loadbench=${LOADBENCH:-1}
changes=${LOADBENCH_CHANGES:-200}
duration=${LOADBENCH_DURATION:-10s}
doc=docs/performance.md
begin='<!-- bench-compare:begin -->'
end='<!-- bench-compare:end -->'
grep -qxF "$begin" "$doc" && grep -qxF "$end" "$doc" || { echo "$doc: no $begin / $end lines" >&2; exit 2; }

section=$(mktemp)
trap 'rm -f "$section"' EXIT
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
		-bench '^Benchmark(Evaluate|EvaluatePeer|EvaluatePeerNewSelector|EvaluateRacks|EvaluateDistinctIDs|EvaluatePolicies|EvaluatePoliciesPeer)$' ./pkg/validate/ | grep '^Benchmark'
	$go test -run '^$' -benchmem -benchtime "$benchtime" -bench '^BenchmarkAnalyze300x5000$' ./pkg/bgp/ | grep '^Benchmark'
	echo '```'
	if [ "$loadbench" != 0 ]; then
		$go build -o bin/webhook ./cmd/webhook
		echo
		echo "### Through the API server"
		echo
		echo "\`hack/loadbench -changes $changes\`: bin/webhook and a no-op webhook registered in turn with the real API server, Node label changes:"
		echo
		echo '```text'
		$go run ./hack/loadbench -changes "$changes"
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

tmp=$(mktemp)
awk -v begin="$begin" -v end="$end" -v section="$section" '
	$0 == begin { while ((getline line < section) > 0) print line; skip = 1; next }
	$0 == end { skip = 0; next }
	!skip { print }
' "$doc" > "$tmp"
mv "$tmp" "$doc"
echo "bench-compare: $doc rewritten" >&2
