# rrguard — see README.md. `make demo` runs the story, `make test` runs vet + every test.
SHELL := /usr/bin/env bash
GO ?= go
export GONOSUMDB := github.com/projectcalico
BIN := $(CURDIR)/bin

.PHONY: all build test unit e2e bench lint controlplane demo clean

all: build

build:
	$(GO) build -o $(BIN)/rrguard ./cmd/rrguard
	$(GO) build -o $(BIN)/webhook ./cmd/webhook

## controlplane: build (or reuse from the cache) kube-apiserver, etcd, kubectl, calicoctl into bin/
controlplane:
	hack/controlplane/build.sh

## demo: the README's first command: control plane + rrguard webhook + the seed migration story
demo: controlplane build
	$(GO) run ./hack/demo

test: controlplane
	$(GO) vet ./...
	$(GO) test -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

clean:
	rm -rf $(BIN)

## image: the container image (needs docker); IMG names it, VERSION is stamped into both binaries
IMG ?= ghcr.io/rrguard/rrguard:latest
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
.PHONY: image
image:
	docker build --build-arg VERSION=$(VERSION) -t $(IMG) .
