//go:build !e2e

package harness

// liveBuild is false in test binaries built without -tags e2e. The packages of live tests tag
// every test file //go:build e2e, so that `make unit` (go test ./...) compiles none of them;
// a test file that lacks the tag would start a control plane there, and Start refuses.
const liveBuild = false
