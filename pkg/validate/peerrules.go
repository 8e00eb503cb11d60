package validate

import (
	"fmt"
	"sort"
	"strings"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/selector"
)

// selectorsMatchNothing reports selectors that select no node taking part in BGP.
func (e *Engine) selectorsMatchNothing(s, base *Snapshot) []Finding {
	var out []Finding
	var known map[string]map[string]bool // label key → values, built on first need
	for p, name := range s.peers {
		peer := s.State.Peer(name)
		if peer.NodeSelectorErr != nil && peer.PeerSelectorErr != nil {
			continue
		}
		local, remote := s.Analysis.PeerMatches(p)
		if peer.Spec.Node != "" && local == 0 && (base == nil || !base.hasPeerForMissingNode(name, peer.Spec.Node)) {
			out = append(out, Finding{
				Rule: RuleSelectorMatchesNothing, Object: ObjectRef{Kind: calico.KindBGPPeer, Group: peer.Group, Name: name}, Field: "spec.node",
				Message: fmt.Sprintf("BGPPeer %s: spec.node %q is no node with a BGP address: the peering applies to nothing; check the node name (kubectl get nodes)", name, peer.Spec.Node),
				key:     RuleSelectorMatchesNothing + "|" + name + "|spec.node|" + peer.Spec.Node,
			})
		}
		for _, side := range []struct {
			field, expr string
			count       int
			err         error
		}{
			{"spec.nodeSelector", peer.Spec.NodeSelector, local, peer.NodeSelectorErr},
			{"spec.peerSelector", peer.Spec.PeerSelector, remote, peer.PeerSelectorErr},
		} {
			if side.expr == "" || side.count > 0 || side.err != nil {
				continue
			}
			key := RuleSelectorMatchesNothing + "|" + name + "|" + side.field + "|" + side.expr
			if base != nil && base.hasSelectorMatchingNothing(name, side.field, side.expr) {
				continue
			}
			if known == nil {
				known = labelValues(s)
			}
			msg := fmt.Sprintf("BGPPeer %s: %s %s selects no node with a BGP address", name, side.field, Quote(side.expr))
			if hint := didYouMean(side.expr, known); hint != "" {
				msg += "; did you mean " + hint + "?"
			} else {
				msg += "; check the label keys and values on the nodes (kubectl get nodes --show-labels)"
			}
			out = append(out, Finding{
				Rule: RuleSelectorMatchesNothing, Object: ObjectRef{Kind: calico.KindBGPPeer, Group: peer.Group, Name: name},
				Field: side.field, Message: msg, key: key,
			})
		}
	}
	return out
}

func (s *Snapshot) hasSelectorMatchingNothing(name, field, expr string) bool {
	for p, n := range s.peers {
		if n != name {
			continue
		}
		peer := s.State.Peer(name)
		local, remote := s.Analysis.PeerMatches(p)
		switch field {
		case "spec.nodeSelector":
			return peer.Spec.NodeSelector == expr && local == 0
		default:
			return peer.Spec.PeerSelector == expr && remote == 0
		}
	}
	return false
}

func (s *Snapshot) hasPeerForMissingNode(name, node string) bool {
	for p, n := range s.peers {
		if n == name {
			local, _ := s.Analysis.PeerMatches(p)
			return s.State.Peer(name).Spec.Node == node && local == 0
		}
	}
	return false
}

// labelValues collects every label key and value on the nodes.
func labelValues(s *Snapshot) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for i := range s.Topology.Nodes {
		for k, v := range s.Topology.Nodes[i].Labels {
			if out[k] == nil {
				out[k] = map[string]bool{}
			}
			out[k][v] = true
		}
	}
	return out
}

// didYouMean proposes label keys close to the keys a selector uses that no node has.
func didYouMean(expr string, known map[string]map[string]bool) string {
	sel, err := selector.Parse(expr)
	if err != nil {
		return ""
	}
	var hints []string
	for _, k := range sel.Keys() {
		if known[k] != nil {
			continue
		}
		best, bestDist := "", 0
		for cand := range known {
			d := editDistance(k, cand)
			if limit := max(2, len(k)/4); d <= limit && (best == "" || d < bestDist || d == bestDist && cand < best) {
				best, bestDist = cand, d
			}
		}
		if best != "" {
			hints = append(hints, fmt.Sprintf("label %q instead of %q", best, k))
		}
	}
	sort.Strings(hints)
	return strings.Join(hints, ", ")
}

// editDistance is the Levenshtein distance.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// peerTargetsNonReflector: with the mesh off, a peerSelector that selects nodes without a
// cluster ID next to reflectors, or nodes labelled as reflectors without a cluster ID: those
// nodes will not reflect what they learn.
func (e *Engine) peerTargetsNonReflector(s, base *Snapshot) []Finding {
	if s.State.Mesh() {
		return nil
	}
	var old map[string]bool
	if base != nil {
		old = map[string]bool{}
		for _, f := range e.peerTargetsNonReflector(base, nil) {
			old[f.key] = true
		}
	}
	var out []Finding
	a := s.Analysis
	for p, name := range s.peers {
		if s.Topology.Peers[p].PeerSelector == nil {
			continue
		}
		var plain []string
		reflectors, labelled := false, false
		for c := range a.Classes {
			if !a.Selects(p, c) {
				continue
			}
			if a.Classes[c].ClusterID != "" {
				reflectors = true
				continue
			}
			for _, m := range members(s, c) {
				plain = append(plain, m)
				if _, ok := s.Topology.Nodes[a.Classes[c].Members[0]].Labels[e.cfg.ReflectorLabel]; ok {
					labelled = true
				}
			}
		}
		if len(plain) == 0 || (!reflectors && !labelled) {
			continue
		}
		sort.Strings(plain)
		key := RulePeerTargetsNonReflector + "|" + name + "|" + strings.Join(plain, ",")
		if old[key] {
			continue
		}
		peer := s.State.Peer(name)
		out = append(out, Finding{
			Rule: RulePeerTargetsNonReflector, Object: ObjectRef{Kind: calico.KindBGPPeer, Group: peer.Group, Name: name}, Field: "spec.peerSelector",
			Message: fmt.Sprintf("BGPPeer %s: peerSelector %s selects %s, which %s no route-reflector cluster ID: %s will not reflect routes to other clients; give %s a routeReflectorClusterID or narrow the selector",
				name, Quote(peer.Spec.PeerSelector), nameList(plain), hasHave(plain), theyIt(plain), themIt(plain)),
			key: key,
		})
	}
	return out
}
