package validate_test

import (
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
)

var layouts = []struct {
	name string
	l    validatetest.Layout
}{
	{"500-nodes-2-rr", validatetest.Layout{Nodes: 500, Reflectors: 2}},
	{"5000-nodes-2-rr", validatetest.Layout{Nodes: 5000, Reflectors: 2}},
	{"5000-nodes-10-rr", validatetest.Layout{Nodes: 5000, Reflectors: 10}},
	{"5000-nodes-3-zones-2-rr-each", validatetest.Layout{Nodes: 5000, Reflectors: 6, Zones: 3}},
}

func TestGeneratedLayoutsAreClean(t *testing.T) {
	for _, lt := range layouts {
		s := validate.NewSnapshot(calico.NewState(validatetest.Generate(lt.l)))
		if fs := validate.New(validate.Config{}).Audit(t.Context(), s); len(fs) != 0 {
			t.Errorf("%s: %d findings, first: %+v", lt.name, len(fs), fs[0])
		}
	}
}

// BenchmarkEvaluate is one admission decision with every built-in rule, route propagation
// included: a client node gets a label (the common, harmless write).
func BenchmarkEvaluate(b *testing.B) {
	for _, lt := range layouts {
		b.Run(lt.name, func(b *testing.B) {
			before := validate.NewSnapshot(calico.NewState(validatetest.Generate(lt.l)))
			old := validatetest.Node("node-00100", "10.1.0.100", "zone-1", "")
			changed := validatetest.Node("node-00100", "10.1.0.100", "zone-1", "")
			changed.Node.K8sLabels["team"] = "payments"
			e := validate.New(validate.Config{})
			ch := validate.Change{Operation: validate.Update, Object: changed, Old: old}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if fs := e.Evaluate(b.Context(), ch, before); len(fs) != 0 {
					b.Fatalf("findings: %+v", fs)
				}
			}
		})
	}
}

// BenchmarkEvaluatePeer is a BGPPeer change: the peer's selectors are evaluated on every node.
func BenchmarkEvaluatePeer(b *testing.B) {
	for _, lt := range layouts {
		b.Run(lt.name, func(b *testing.B) {
			before := validate.NewSnapshot(calico.NewState(validatetest.Generate(lt.l)))
			e := validate.New(validate.Config{})
			ch := validate.Change{Operation: validate.Create, Object: validatetest.Peer("extra", "has(route-reflector)", "has(route-reflector)")}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e.Evaluate(b.Context(), ch, before)
			}
		})
	}
}

// BenchmarkAudit is a full audit: snapshot (analysis) plus every rule.
func BenchmarkAudit(b *testing.B) {
	for _, lt := range layouts {
		b.Run(lt.name, func(b *testing.B) {
			state := calico.NewState(validatetest.Generate(lt.l))
			e := validate.New(validate.Config{})
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				if fs := e.Audit(b.Context(), validate.NewSnapshot(state)); len(fs) != 0 {
					b.Fatalf("findings: %+v", fs[0])
				}
			}
		})
	}
}

// BenchmarkEvaluatePeerNewSelector is a BGPPeer whose selector no other peer uses: it is
// evaluated on every node and the classes are rebuilt.
func BenchmarkEvaluatePeerNewSelector(b *testing.B) {
	for _, lt := range layouts {
		b.Run(lt.name, func(b *testing.B) {
			before := validate.NewSnapshot(calico.NewState(validatetest.Generate(lt.l)))
			e := validate.New(validate.Config{})
			ch := validate.Change{Operation: validate.Create, Object: validatetest.Peer("extra", "kubernetes.io/os == 'linux'", "has(route-reflector)")}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				e.Evaluate(b.Context(), ch, before)
			}
		})
	}
}
