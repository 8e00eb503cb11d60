//go:build e2e

package admission

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/bgp"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/cluster"
	"github.com/rrguard/rrguard/test/harness"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Concurrent changes are judged together: bursts of changes, each harmless alone, sent at once
// through the API server, must not cut a node off together (one rrguard replica).

func coreNode(name, ip, cid string, labels map[string]any) *unstructured.Unstructured {
	labels["kubernetes.io/hostname"] = name
	ann := map[string]any{calico.AnnotationIPv4Address: ip + "/16"}
	if cid != "" {
		ann[calico.AnnotationClusterID] = cid
	}
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "Node",
		"metadata": map[string]any{"name": name, "labels": labels, "annotations": ann},
		"status":   map[string]any{"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}}}}
}

func peerObj(name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPPeer",
		"metadata": map[string]any{"name": name}, "spec": spec}}
}

// burstCluster has reflectors r0..r(reflectors-1) with cluster IDs of their own, peered with
// one another, clients c00..c(clients-1), the mesh off, and more objects.
func burstCluster(t *testing.T, reflectors, clients int, more ...*unstructured.Unstructured) {
	t.Helper()
	ctx := context.Background()
	if err := h.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	var objs []*unstructured.Unstructured
	for r := range reflectors {
		objs = append(objs, coreNode(fmt.Sprintf("r%d", r), fmt.Sprintf("10.60.0.%d", r+1), fmt.Sprintf("1.0.0.%d", r+1), map[string]any{"route-reflector": "true", "rr": fmt.Sprint(r)}))
	}
	for c := range clients {
		objs = append(objs, coreNode(fmt.Sprintf("c%02d", c), fmt.Sprintf("10.60.1.%d", c+1), "", map[string]any{}))
	}
	objs = append(objs, peerObj("rr-mesh", map[string]any{"nodeSelector": "has(route-reflector)", "peerSelector": "has(route-reflector)"}))
	objs = append(objs, more...)
	// The mesh goes last, once the peerings exist (rrguard judges these creates too).
	objs = append(objs, &unstructured.Unstructured{Object: map[string]any{"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPConfiguration",
		"metadata": map[string]any{"name": "default"}, "spec": map[string]any{"nodeToNodeMeshEnabled": false, "asNumber": int64(64512)}}})
	if err := h.Create(ctx, objs); err != nil {
		t.Fatal(err)
	}
	awaitModel(t, reflectors+clients, len(objs)-reflectors-clients-1)
}

// awaitModel waits until rrguard's model holds the nodes and peers created.
func awaitModel(t *testing.T, nodes, peers int) {
	t.Helper()
	if err := harness.Poll(30*time.Second, func() error {
		s := hook.srv.Store.Snapshot().State
		if n, p := len(s.NodeNames()), len(s.PeerNames()); n != nodes || p != peers {
			return fmt.Errorf("rrguard's model has %d nodes and %d peers, want %d and %d", n, p, nodes, peers)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
}

// fewestReflectors returns the client with the fewest reflectors in the cluster as stored.
func fewestReflectors(t *testing.T, clients int) (string, int) {
	t.Helper()
	state, _, err := cluster.LoadLive(context.Background(), h.Config)
	if err != nil {
		t.Fatal(err)
	}
	a := bgp.Analyze(state.Topology())
	worst, fewest := "", 1<<30
	for c := range clients {
		name := fmt.Sprintf("c%02d", c)
		n := 0
		if cl := a.Class(name); cl >= 0 {
			n = len(a.ReflectorsOf(cl))
		}
		if n < fewest {
			worst, fewest = name, n
		}
	}
	return worst, fewest
}

// TestBurstOfShadowingPeers is the probe's burst: peers created at once, each of which claims
// one client's session with one reflector first (its name sorts before the client peering)
// with a localASNumber the reflector refuses, so that session stays down. Each alone leaves
// the client two of its three reflectors; all of a client's at once would cut it off.
func TestBurstOfShadowingPeers(t *testing.T) {
	const reflectors, clients = 3, 30
	burstCluster(t, reflectors, clients, peerObj("node-peer-to-rr", map[string]any{"nodeSelector": "!has(route-reflector)", "peerSelector": "has(route-reflector)"}))
	ctx := context.Background()
	var wg sync.WaitGroup
	var allowed, refused atomic.Int32
	for c := range clients {
		for r := range reflectors {
			p := peerObj(fmt.Sprintf("a-shadow-c%02d-r%d", c, r), map[string]any{"node": fmt.Sprintf("c%02d", c),
				"peerIP": fmt.Sprintf("10.60.0.%d", r+1), "asNumber": int64(64512), "localASNumber": int64(65009)})
			wg.Go(func() {
				if err := h.Client.Create(ctx, p); err != nil {
					refused.Add(1)
				} else {
					allowed.Add(1)
				}
			})
		}
	}
	wg.Wait()
	t.Logf("%d shadowing peers allowed, %d refused", allowed.Load(), refused.Load())
	awaitModel(t, reflectors+clients, 2+int(allowed.Load()))
	if worst, n := fewestReflectors(t, clients); n < 2 {
		t.Errorf("after the burst %s has %d reflectors: rrguard let changes through together that cut it below 2", worst, n)
	}
	if allowed.Load() < clients {
		t.Errorf("only %d of the shadowing peers allowed: each client can lose one reflector", allowed.Load())
	}
}

// TestConcurrentPairDeletions: each client reaches its four reflectors through two peers of
// two reflectors each; deleting either leaves it two, deleting both cuts it off. Both of every
// pair are deleted at once.
func TestConcurrentPairDeletions(t *testing.T) {
	const reflectors, clients = 4, 20
	var peers []*unstructured.Unstructured
	for c := range clients {
		node := fmt.Sprintf("c%02d", c)
		peers = append(peers, peerObj(fmt.Sprintf("x-%s", node), map[string]any{"node": node, "peerSelector": "rr in {'0', '1'}"}),
			peerObj(fmt.Sprintf("y-%s", node), map[string]any{"node": node, "peerSelector": "rr in {'2', '3'}"}))
	}
	burstCluster(t, reflectors, clients, peers...)
	ctx := context.Background()
	var wg sync.WaitGroup
	var allowed atomic.Int32
	for _, p := range peers {
		wg.Go(func() {
			if err := h.Client.Delete(ctx, p.DeepCopy(), client.PropagationPolicy("Background")); err == nil {
				allowed.Add(1)
			}
		})
	}
	wg.Wait()
	t.Logf("%d of %d deletions allowed", allowed.Load(), len(peers))
	awaitModel(t, reflectors+clients, 1+2*clients-int(allowed.Load()))
	if worst, n := fewestReflectors(t, clients); n < 2 {
		t.Errorf("after the deletions %s has %d reflectors: both of its peers went", worst, n)
	}
	if allowed.Load() != clients {
		t.Errorf("%d deletions allowed, want one of each pair (%d)", allowed.Load(), clients)
	}
}
