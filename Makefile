# rrguard — see README.md. `make demo` runs the story, `make test` runs vet + every test.
SHELL := /usr/bin/env bash
GO ?= go
# Every build reads the Calico modules' hashes from go.sum (and hack/controlplane's wrapper
# modules' go.sum). Only a change of go.mod's Calico pins (go get github.com/projectcalico/…@…)
# needs the checksum database skipped for them: this proxy serves the exact pseudo-versions
# but sum.golang.org cannot vouch for them. This is the one place that says so.
export GONOSUMDB := github.com/projectcalico
BIN := $(CURDIR)/bin

.PHONY: all build test test-deps unit race e2e dist bench bench-compare fuzz lint controlplane demo clean

all: build

## build: bin/rrguard and bin/webhook as the image ships them (hack/build.sh: static, -trimpath,
## -ldflags "-s -w", version stamped)
build:
	hack/build.sh $(BIN) $(VERSION)

## controlplane: kube-apiserver, etcd, kubectl, calicoctl, confd, calico-apiserver into bin/: cached,
## else downloaded (confd and calico-apiserver have no release binary), else built from the Go
## module proxy (hack/controlplane/build.sh)
controlplane:
	hack/controlplane/build.sh

## demo: the README's first command: control plane + rrguard webhook + the seed migration story
demo: controlplane build
	$(GO) run ./hack/demo

## test-deps: what the tests need beyond Go (BIRD, Chromium, iproute2, openssl, curl): installed as
## root on Debian/Ubuntu, else named with the RRGUARD_SKIP_* switches (hack/test-deps.sh)
test-deps:
	hack/test-deps.sh

# The live tests build only with -tags e2e: every test file of their packages starts with
# //go:build e2e (they need the control plane, root and BIRD, or Chromium). /usr/sbin: bird, ip.
E2E_ENV := PATH="$$PATH:/usr/sbin:/sbin"
HAS_TESTS := {{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}
# The packages whose tests exist only with the tag.
E2E_PKGS = $(shell comm -13 <($(GO) list -f '$(HAS_TESTS)' ./... | sort) <($(GO) list -tags e2e -f '$(HAS_TESTS)' ./... | sort))

# test/bounded measures how long a user's review waits during a hostile burst, against the 3 s
# the API server gives rrguard: it runs alone, after the others, so that it measures rrguard and
# not the other test packages sharing the machine's cores (beside test/bird on 2 cores it created
# its 3,000 Nodes in 29 s instead of 4, and a review took 3.02 s).
MODULE = $(shell $(GO) list -m)
ALONE = $(MODULE)/test/bounded

## test: vet + every test, unit and live; the live ones start the control plane that
## `make controlplane` builds
test: test-deps controlplane
	$(GO) vet -tags e2e ./...
	$(E2E_ENV) $(GO) test -tags e2e -count=1 -timeout $(TEST_TIMEOUT) $(filter-out $(ALONE),$(shell $(GO) list -tags e2e ./...))
	$(E2E_ENV) $(GO) test -tags e2e -count=1 -timeout $(TEST_TIMEOUT) $(ALONE)

# test/bird alone takes ~8 minutes on 2 loaded cores: past go test's default of 10 per package.
TEST_TIMEOUT ?= 30m

## unit: vet + the tests that need no root, BIRD, Chromium or control plane
unit:
	$(GO) vet ./...
	$(GO) test -count=1 ./...

## e2e: the live tests only (test/admission, test/bird, test/deploy, test/helm, test/pictures, …)
e2e: test-deps controlplane
	$(E2E_ENV) $(GO) test -tags e2e -count=1 -timeout $(TEST_TIMEOUT) $(filter-out $(ALONE),$(E2E_PKGS))
	$(E2E_ENV) $(GO) test -tags e2e -count=1 -timeout $(TEST_TIMEOUT) $(ALONE)

## race: the unit tests under the race detector (worker pools in pkg/cluster and pkg/validate,
## the webhook's store); .ci/run runs it
race:
	$(GO) test -race -count=1 ./...

## dist: release archives of rrguard and kubectl-rrguard for linux and darwin on amd64 and arm64,
## their sha256 (checksums.txt) and the krew manifest (rrguard.yaml) in dist/ (hack/dist.sh);
## VERSION names the release (make dist VERSION=v0.1.0)
dist:
	hack/dist.sh $(CURDIR)/dist $(VERSION)

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

## bench-compare: each benchmark BenchmarkX that has a floor BenchmarkXFloor (a no-op webhook over
## the same HTTPS stack, a bare json.Unmarshal of the same review, …) as a ratio to that floor,
## measured in the same run (hack/benchcompare; BENCHCOUNT rounds, the median reported); the
## admission decisions at 5,000 nodes; then, unless LOADBENCH=0, bin/webhook against a no-op
## webhook through the real API server (hack/loadbench, LOADBENCH_CHANGES per level) and straight
## over HTTPS (LOADBENCH_DURATION per level and webhook; both need `make controlplane`). It
## rewrites the measured part of docs/performance.md (hack/bench-compare.sh).
BENCHCOUNT ?= 3
BENCHTIME ?= 1s
LOADBENCH ?= 1
LOADBENCH_CHANGES ?= 1000
LOADBENCH_DURATION ?= 10s
bench-compare:
	BENCHCOUNT=$(BENCHCOUNT) BENCHTIME=$(BENCHTIME) LOADBENCH=$(LOADBENCH) LOADBENCH_CHANGES=$(LOADBENCH_CHANGES) \
		LOADBENCH_DURATION=$(LOADBENCH_DURATION) GO=$(GO) hack/bench-compare.sh

## fuzz: each fuzz target for FUZZTIME (default 60s); new failures land in testdata/fuzz. `make test`
## and `make unit` replay the seed corpora (f.Add and testdata/fuzz) as ordinary tests. Each input
## that finds new code is shrunk for at most FUZZMINIMIZETIME (Go's default, 60s, can take a
## target's whole time).
FUZZTIME ?= 60s
FUZZMINIMIZETIME ?= 10s
# Every fuzz target of the unit tests, as go test -list finds it (no list to keep): each
# package's names, then its "ok" line.
fuzz:
	@set -e; $(GO) test -list '^Fuzz' ./... | awk '/^Fuzz/ {f = f " " $$1} /^ok/ {if (f != "") print $$2 f; f = ""}' | \
	while read -r pkg fns; do for fn in $$fns; do \
		echo "== $$fn ($$pkg) for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$$fn\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg </dev/null; \
	done; done

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet -tags e2e ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 -tags e2e ./...

clean:
	rm -rf $(BIN) $(CURDIR)/dist

## image: the container image (needs docker); IMG names it, VERSION is stamped into both binaries
IMG ?= ghcr.io/rrguard/rrguard:latest
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
.PHONY: image
image:
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .
