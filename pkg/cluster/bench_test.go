package cluster

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	yaml2 "go.yaml.in/yaml/v2"
)

// BenchmarkSnapshotAfterLabelChange is what the first admission request after a Node label
// change pays when it judges against the store: 5,000 nodes, with 0 or 1,000 node-scoped
// BGPPeers (one per rack) besides the reflector peers.
func BenchmarkSnapshotAfterLabelChange(b *testing.B) {
	for _, racks := range []int{0, 1000} {
		b.Run(fmt.Sprintf("5000-nodes-%d-rack-peers", racks), func(b *testing.B) {
			objs := validatetest.Generate(validatetest.Layout{Nodes: 5000, Reflectors: 2})
			for r := 0; r < racks; r++ {
				objs = append(objs, validatetest.Peer(fmt.Sprintf("rack-%04d", r), fmt.Sprintf("rack == 'r%d'", r), "has(route-reflector)"))
			}
			for i, o := range objs {
				if o.CoreNode != nil {
					o.CoreNode.Labels["rack"] = fmt.Sprintf("r%d", i%max(racks, 1))
				}
			}
			store := storeWith(b, objs)
			store.Snapshot()
			node := objs[1234].CoreNode.DeepCopy()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				node.Labels["team"] = fmt.Sprint(i)
				store.UpsertNode(node.DeepCopy())
				store.Snapshot()
			}
		})
	}
}

// writeNodeManifests writes n core/v1 Nodes (4 of them reflectors), as `kubectl get node -o
// yaml` shows them, in files of 10,000 documents, and the two reflector BGPPeers.
func writeNodeManifests(tb testing.TB, n int) string {
	tb.Helper()
	dir := tb.TempDir()
	var b strings.Builder
	flush := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			tb.Fatal(err)
		}
		b.Reset()
	}
	for i := 0; i < n; i++ {
		rrLabel, rrAnnotation := "", ""
		if i < 4 {
			rrLabel, rrAnnotation = "    route-reflector: \"true\"\n", "    projectcalico.org/RouteReflectorClusterID: 1.0.0.1\n"
		}
		ip := fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255)
		fmt.Fprintf(&b, `---
apiVersion: v1
kind: Node
metadata:
  name: node-%06d
  labels:
    kubernetes.io/hostname: node-%06d
    kubernetes.io/os: linux
    kubernetes.io/arch: amd64
    topology.kubernetes.io/zone: zone-%d
%s  annotations:
    projectcalico.org/IPv4Address: %s/8
    projectcalico.org/IPv4IPIPTunnelAddr: 192.168.%d.%d
%sspec:
  podCIDR: 10.244.%d.0/24
status:
  conditions:
  - type: Ready
    status: "True"
    reason: KubeletReady
  addresses:
  - type: InternalIP
    address: %s
`, i, i, i%3, rrLabel, ip, (i>>8)&255, i&255, rrAnnotation, (i>>8)&255, ip)
		if (i+1)%10000 == 0 || i == n-1 {
			flush(fmt.Sprintf("nodes-%03d.yaml", i/10000))
		}
	}
	b.WriteString(`apiVersion: crd.projectcalico.org/v1
kind: BGPPeer
metadata:
  name: node-peer-to-rr
spec:
  nodeSelector: "!has(route-reflector)"
  peerSelector: has(route-reflector)
---
apiVersion: crd.projectcalico.org/v1
kind: BGPPeer
metadata:
  name: rr-to-rr-peer
spec:
  nodeSelector: has(route-reflector)
  peerSelector: has(route-reflector)
`)
	flush("peers.yaml")
	return dir
}

// BenchmarkLoadManifests is what `rrguard validate -f` does before judging: 100,000 Node
// documents read, decoded (on every core) and turned into a state.
func BenchmarkLoadManifests(b *testing.B) {
	dir := writeNodeManifests(b, 100000)
	b.ReportAllocs()
	for b.Loop() {
		m, err := LoadFiles([]string{dir}, LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		if s := m.State(); len(s.NodeNames()) != 100000 {
			b.Fatalf("%d nodes", len(s.NodeNames()))
		}
	}
}

// BenchmarkLoadManifestsFloor is BenchmarkLoadManifests' floor: the same files read and
// each document parsed once, on every core, by go.yaml.in/yaml/v2 into a generic value — the
// parse sigs.k8s.io/yaml (and so kubectl) starts every document with — and nothing more.
func BenchmarkLoadManifestsFloor(b *testing.B) {
	dir := writeNodeManifests(b, 100000)
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		docs := make(chan []byte, 256)
		var n atomic.Int64
		var wg sync.WaitGroup
		for range runtime.GOMAXPROCS(0) {
			wg.Go(func() {
				for doc := range docs {
					var y interface{}
					if err := yaml2.Unmarshal(doc, &y); err != nil {
						b.Error(err)
					}
					n.Add(1)
				}
			})
		}
		for _, f := range files {
			raw, err := os.ReadFile(f)
			if err != nil {
				b.Fatal(err)
			}
			for _, doc := range bytes.Split(raw, []byte("\n---\n")) {
				docs <- doc
			}
		}
		close(docs)
		wg.Wait()
		if n.Load() < 100000 {
			b.Fatalf("%d documents", n.Load())
		}
	}
}
