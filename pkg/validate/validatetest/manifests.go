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
func NodeManifests(tb testing.TB, n int) string { return nodeManifests(tb, n, false) }

// NodeList is NodeManifests as `kubectl get nodes -o yaml` exports the Nodes: one List
// document, each Node with the status a kubelet reports (node info, capacity, images).
func NodeList(tb testing.TB, n int) string { return nodeManifests(tb, n, true) }

func nodeManifests(tb testing.TB, n int, list bool) string {
	tb.Helper()
	dir := tb.TempDir()
	var b strings.Builder
	flush := func(name string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
			tb.Fatal(err)
		}
		b.Reset()
	}
	if list {
		b.WriteString("apiVersion: v1\nkind: List\nmetadata:\n  resourceVersion: \"\"\nitems:\n")
	}
	var doc strings.Builder
	for i := 0; i < n; i++ {
		rrLabel, rrAnnotation := "", ""
		if i < 4 {
			rrLabel, rrAnnotation = "    route-reflector: \"true\"\n", "    projectcalico.org/RouteReflectorClusterID: 1.0.0.1\n"
		}
		ip := fmt.Sprintf("10.%d.%d.%d", (i>>16)&255, (i>>8)&255, i&255)
		doc.Reset()
		fmt.Fprintf(&doc, `---
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
		if !list {
			b.WriteString(doc.String())
			if (i+1)%10000 == 0 || i == n-1 {
				flush(fmt.Sprintf("nodes-%03d.yaml", i/10000))
			}
			continue
		}
		fmt.Fprintf(&doc, kubeletStatus, i%7, i%7)
		lines := strings.Split(strings.TrimSuffix(strings.TrimPrefix(doc.String(), "---\n"), "\n"), "\n")
		for k, l := range lines {
			if k == 0 {
				b.WriteString("- " + l + "\n")
			} else {
				b.WriteString("  " + l + "\n")
			}
		}
	}
	if list {
		flush("nodes.yaml")
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

// kubeletStatus is the rest of a Node's status as a kubelet reports it (appended to the
// status of a NodeList item): what an export carries and rrguard does not read.
const kubeletStatus = `  allocatable:
    cpu: "15800m"
    ephemeral-storage: "95551679124"
    hugepages-1Gi: "0"
    hugepages-2Mi: "0"
    memory: 63193004Ki
    pods: "110"
  capacity:
    cpu: "16"
    ephemeral-storage: 103680492Ki
    hugepages-1Gi: "0"
    hugepages-2Mi: "0"
    memory: 65597356Ki
    pods: "110"
  daemonEndpoints:
    kubeletEndpoint:
      Port: 10250
  images:
  - names:
    - docker.io/calico/node@sha256:8e2c5e9f0a4d5c6b7a8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4
    - docker.io/calico/node:v3.31.0
    sizeBytes: 139735204
  - names:
    - docker.io/calico/cni@sha256:0a1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5
    - docker.io/calico/cni:v3.31.0
    sizeBytes: 93617524
  - names:
    - registry.k8s.io/kube-proxy@sha256:1b2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6
    - registry.k8s.io/kube-proxy:v1.37.2
    sizeBytes: 30841872
  - names:
    - registry.k8s.io/pause@sha256:2c3d4e5f60718293a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7
    - registry.k8s.io/pause:3.10
    sizeBytes: 320368
  nodeInfo:
    architecture: amd64
    bootID: 3f1c2a9e-%04d-4b7e-9c1d-5e6f7a8b9c0d
    containerRuntimeVersion: containerd://2.1.4
    kernelVersion: 6.12.0-1-amd64
    kubeProxyVersion: v1.37.2
    kubeletVersion: v1.37.2
    machineID: 7c0e9d2b%04d4f1a8e3b6c5d4e3f2a1b
    operatingSystem: linux
    osImage: Debian GNU/Linux 13 (trixie)
    systemUUID: ec2b7f3e-1c9a-4d2e-8f6b-0a1b2c3d4e5f
`
