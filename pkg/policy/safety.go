package policy

import (
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
)

// notDeterministic are built-ins refused although OPA does not mark them non-deterministic:
// net.cidr_expand can build millions of addresses in one call, which no deadline interrupts.
var notDeterministic = map[string]bool{
	"net.cidr_expand": true,
}

// capabilities are OPA's built-ins minus everything that reaches the network or the host, reads
// the clock or randomness, or otherwise gives different answers to the same question
// (http.send, net.lookup_ip_addr, opa.runtime, time.now_ns, rand.intn, uuid.rfc4122,
// io.jwt.encode_sign, json.match_schema with remote references, ...). A policy that calls one
// does not compile. Policies must decide the same way in the webhook, the audit and the CLI.
var capabilities = sync.OnceValue(func() *ast.Capabilities {
	c := ast.CapabilitiesForThisVersion()
	kept := c.Builtins[:0]
	for _, b := range c.Builtins {
		if !refused(b) {
			kept = append(kept, b)
		}
	}
	c.Builtins = kept
	c.AllowNet = []string{} // no host may be reached, not even for schema references
	return c
})

func refused(b *ast.Builtin) bool { return b.Nondeterministic || notDeterministic[b.Name] }

// Refused lists the built-ins rrguard policies may not call.
func Refused() []string {
	var out []string
	for _, b := range ast.CapabilitiesForThisVersion().Builtins {
		if refused(b) {
			out = append(out, b.Name)
		}
	}
	return out
}

// refusedMessage rewrites the compiler's "undefined function" for a refused built-in into why.
func refusedMessage(msg string) string {
	name, ok := strings.CutPrefix(msg, "undefined function ")
	if !ok {
		return msg
	}
	if b, ok := ast.BuiltinMap[name]; ok && refused(b) {
		return name + " is not allowed in rrguard policies: a policy may not reach the network or the host, read the clock or randomness, or otherwise decide differently on the same input (the webhook, the audit and the CLI must agree)"
	}
	return msg
}
