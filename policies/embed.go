// Package policies holds the Rego policies shipped with rrguard, each with its _test.rego.
// They are compiled into the binaries (pkg/policy loads them next to the user's policies) and
// are off by default: rrguard.yaml turns them on (rules: {private-asn: deny}).
package policies

import "embed"

// FS holds the shipped .rego files, tests included.
//
//go:embed *.rego
var FS embed.FS
