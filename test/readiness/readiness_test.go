//go:build e2e

// Package readiness proves against a real kube-apiserver that rrguard opens admission only on a
// complete model: restarted again and again with thousands of Nodes in the cluster, its very
// first admission decision already sees the last of them.
package readiness

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/webhook"
	"github.com/rrguard/rrguard/test/harness"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

var h *harness.Harness

func TestMain(m *testing.M) {
	log.SetLogger(zap.New(zap.WriteTo(io.Discard)))
	os.Exit(harness.Main(m, harness.Options{}, &h))
}

// envInt reads a positive integer from the environment, or def.
func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// The cluster of the test: two reflectors, clients, and one BGPPeer that connects every node
// to the reflectors; the mesh is off. The reflectors' names sort first and the cut node's
// last, so a model the informers have not finished filling lacks exactly the cut node.
const (
	cutNode = "node-zzzzz"
	peer    = "node-peer-to-rr"
)

func calicoNode(name string, i int, labels map[string]interface{}, clusterID string) *unstructured.Unstructured {
	ann := map[string]interface{}{"projectcalico.org/IPv4Address": fmt.Sprintf("10.%d.%d.%d/8", i>>16&255, i>>8&255, i&255)}
	if clusterID != "" {
		ann["projectcalico.org/RouteReflectorClusterID"] = clusterID
	}
	// What a real node carries besides: the usual labels, Calico's own label set and tunnel
	// addresses, and a kubelet status.
	labels["kubernetes.io/hostname"] = name
	for _, k := range []string{"kubernetes.io/os", "kubernetes.io/arch", "node.kubernetes.io/instance-type", "topology.kubernetes.io/region", "topology.kubernetes.io/zone"} {
		labels[k] = fmt.Sprintf("value-%d", i%7)
	}
	ann["projectcalico.org/labels"] = fmt.Sprintf(`{"kubernetes.io/hostname":%q,"rack":"r%d","zone":"z%d"}`, name, i%40, i%3)
	ann["projectcalico.org/IPv4IPIPTunnelAddr"] = fmt.Sprintf("192.168.%d.%d", i>>8&255, i&255)
	ann["node.alpha.kubernetes.io/ttl"] = "0"
	var conditions, images []interface{}
	for _, c := range []string{"MemoryPressure", "DiskPressure", "PIDPressure", "NetworkUnavailable"} {
		conditions = append(conditions, map[string]interface{}{"type": c, "status": "False", "reason": "KubeletHasSufficient" + c, "message": "kubelet has sufficient resources"})
	}
	conditions = append(conditions, map[string]interface{}{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status"})
	for j := 0; j < 10; j++ {
		images = append(images, map[string]interface{}{"names": []interface{}{fmt.Sprintf("registry.example/app-%d@sha256:%064d", j, j)}, "sizeBytes": 1 << 20})
	}
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "v1", "kind": "Node",
		"metadata": map[string]interface{}{"name": name, "labels": labels, "annotations": ann},
		"status": map[string]interface{}{"conditions": conditions, "images": images,
			"addresses": []interface{}{map[string]interface{}{"type": "InternalIP", "address": fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}}},
	}}
}

func bgpPeer(nodeSelector string) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPPeer",
		"metadata": map[string]interface{}{"name": peer},
		"spec":     map[string]interface{}{"nodeSelector": nodeSelector, "peerSelector": "has(route-reflector)"},
	}}
}

// createCluster creates the reflectors, n clients (the last of them cutNode), the peer and the
// mesh-off configuration, with a few writers in parallel.
func createCluster(ctx context.Context, t *testing.T, n int) {
	t.Helper()
	objs := []*unstructured.Unstructured{
		calicoNode("a-rr-1", 1, map[string]interface{}{"route-reflector": "true"}, "224.0.0.1"),
		calicoNode("a-rr-2", 2, map[string]interface{}{"route-reflector": "true"}, "224.0.0.1"),
		bgpPeer("all()"),
		{Object: map[string]interface{}{
			"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPConfiguration",
			"metadata": map[string]interface{}{"name": "default"},
			"spec":     map[string]interface{}{"nodeToNodeMeshEnabled": false, "asNumber": 64512},
		}},
	}
	for i := 0; i < n-1; i++ {
		objs = append(objs, calicoNode(fmt.Sprintf("node-%05d", i), 10+i, map[string]interface{}{}, ""))
	}
	objs = append(objs, calicoNode(cutNode, 10+n, map[string]interface{}{"cut": "yes"}, ""))
	work := make(chan *unstructured.Unstructured)
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for o := range work {
				if err := h.Client.Create(ctx, o); err != nil {
					select {
					case errs <- fmt.Errorf("create %s %s: %w", o.GetKind(), o.GetName(), err):
					default:
					}
				}
			}
		}()
	}
	for _, o := range objs {
		work <- o
	}
	close(work)
	wg.Wait()
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// cutReview is the UPDATE of the peer that leaves cutNode out of it: cutNode keeps no BGP
// session at all, which rrguard refuses (route-propagation) when its model holds cutNode.
func cutReview(t *testing.T) []byte {
	t.Helper()
	b, err := harness.UpdateReview("cut-"+cutNode, bgpPeer("all()"), bgpPeer("!has(cut)"), "bgppeers")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// firstDecision starts a fresh rrguard server and sends it the cut review until it answers
// anything but "not ready" (503 or no listener yet): that is its first admission decision.
func firstDecision(t *testing.T, certDir string, body []byte) (*admissionv1.AdmissionResponse, int) {
	t.Helper()
	port := harness.FreePortFor(t)
	ctx, cancel := context.WithCancel(context.Background())
	srv, err := webhook.NewServer(ctx, h.Config, webhook.Options{
		Host: "127.0.0.1", Port: port, CertDir: certDir, MetricsAddr: "0", ProbeAddr: "0",
		Config: validate.DefaultConfig(), AuditDisabled: true,
	})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("server stopped: %v", err)
		}
	}()
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // loopback test server with a throwaway certificate
	}}
	defer c.CloseIdleConnections()
	url := fmt.Sprintf("https://127.0.0.1:%d%s", port, webhook.ValidatePath)
	deadline := time.Now().Add(2 * time.Minute)
	for time.Now().Before(deadline) {
		resp, err := c.Post(url, "application/json", bytes.NewReader(body))
		if err != nil {
			var op *net.OpError
			if !errors.As(err, &op) {
				t.Fatalf("POST %s: %v", url, err)
			}
			time.Sleep(2 * time.Millisecond)
			continue
		}
		data, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode == http.StatusServiceUnavailable {
			time.Sleep(2 * time.Millisecond)
			continue
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("POST %s: HTTP %d: %s", url, resp.StatusCode, data)
		}
		var out admissionv1.AdmissionReview
		if err := json.Unmarshal(data, &out); err != nil || out.Response == nil {
			t.Fatalf("POST %s: not an AdmissionReview response (%v): %s", url, err, data)
		}
		return out.Response, len(srv.Store.Snapshot().State.NodeNames())
	}
	t.Fatalf("rrguard did not open admission within 2 minutes")
	return nil, 0
}

// TestFirstDecisionSeesEveryNode restarts rrguard against RRGUARD_READINESS_NODES Nodes
// (default 5,000) RRGUARD_READINESS_RESTARTS times (default 20): every first decision must
// refuse the peer update that cuts the last node off, which it can only do if the model
// already holds that node.
func TestFirstDecisionSeesEveryNode(t *testing.T) {
	nodes, restarts := envInt("RRGUARD_READINESS_NODES", 5000), envInt("RRGUARD_READINESS_RESTARTS", 20)
	ctx := context.Background()
	start := time.Now()
	createCluster(ctx, t, nodes)
	t.Logf("created %d Nodes in %v", nodes+2, time.Since(start).Round(time.Millisecond))
	_, certDir := harness.ServingDir(t, "rrguard-readiness-ca")
	body := cutReview(t)
	partial := 0
	for i := 0; i < restarts; i++ {
		start := time.Now()
		resp, seen := firstDecision(t, certDir, body)
		t.Logf("restart %d: first decision after %v: allowed=%v", i+1, time.Since(start).Round(time.Millisecond), resp.Allowed)
		if resp.Allowed {
			partial++
			t.Errorf("restart %d: the first decision allowed the BGPPeer %s update that cuts %s off (the model holds %d of %d Nodes now): admission opened before the model was complete", i+1, peer, cutNode, seen, nodes+2)
		} else if resp.Result == nil || !bytes.Contains([]byte(resp.Result.Message), []byte(cutNode)) {
			t.Errorf("restart %d: refused, but not for cutting %s off: %+v", i+1, cutNode, resp.Result)
		}
	}
	if partial > 0 {
		t.Errorf("%d of %d restarts opened admission on a partial model", partial, restarts)
	}
}
