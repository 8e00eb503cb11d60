//go:build e2e

package harness

// liveBuild: built with -tags e2e, as `make e2e` and `make test` build the live tests.
const liveBuild = true
