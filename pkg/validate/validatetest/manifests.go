package validatetest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	yaml2 "go.yaml.in/yaml/v2"
)

// NodeManifests writes n core/v1 Nodes (4 of them reflectors), as `kubectl get node -o yaml`
// shows them, in files of 10,000 documents, and the two reflector BGPPeers, into a temporary
// directory it returns.
func NodeManifests(tb testing.TB, n int) string {
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

// ParseManifests is the floor of reading manifests: the *.yaml files of dir read and each
// document parsed once, on every core, by go.yaml.in/yaml/v2 into a generic value — the
// parse sigs.k8s.io/yaml (and so kubectl) starts every document with — and nothing more.
// Each file is one stream that one parser reads, the cheapest way to parse many documents.
// It returns the number of documents.
func ParseManifests(dir string) (int, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return 0, err
	}
	jobs := make(chan string, len(files))
	for _, f := range files {
		jobs <- f
	}
	close(jobs)
	var n atomic.Int64
	var first error
	var once sync.Once
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for f := range jobs {
				raw, err := os.ReadFile(f)
				if err != nil {
					once.Do(func() { first = err })
					return
				}
				dec := yaml2.NewDecoder(bytes.NewReader(raw))
				for {
					var y interface{}
					err := dec.Decode(&y)
					if err == io.EOF {
						break
					}
					if err != nil {
						once.Do(func() { first = err })
						return
					}
					n.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(n.Load()), first
}
