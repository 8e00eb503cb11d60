package validate_test

import (
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
)

// The floors of the BGPPeer decisions: what any decision on the new BGPPeer must do at
// least, whatever the cluster: read the peer and parse its two selectors. `make
// bench-compare` divides BenchmarkX by BenchmarkXFloor.

func peerFloor(b *testing.B, nodeSel func(i int) string, peerSel string) {
	for _, lt := range layouts {
		b.Run(lt.name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				o := validatetest.Peer("extra", nodeSel(i), peerSel)
				if p := calico.NewPeer(o.Group, o.Peer); p.NodeSelectorErr != nil || p.PeerSelectorErr != nil {
					b.Fatal(p.NodeSelectorErr, p.PeerSelectorErr)
				}
			}
		})
	}
}

func same(expr string) func(int) string { return func(int) string { return expr } }

// BenchmarkEvaluatePeerFloor is BenchmarkEvaluatePeer's floor.
func BenchmarkEvaluatePeerFloor(b *testing.B) {
	peerFloor(b, same("has(route-reflector)"), "has(route-reflector)")
}

// BenchmarkEvaluatePeerNewSelectorFloor is BenchmarkEvaluatePeerNewSelector's floor.
func BenchmarkEvaluatePeerNewSelectorFloor(b *testing.B) {
	peerFloor(b, newSelector, "has(route-reflector)")
}
