//go:build e2e

// Package gitops proves live what a GitOps pull request asks of rrguard: `rrguard validate
// --context … -f changes/` judges the files together as one change to the real cluster, where
// the webhook (and kubectl apply --dry-run=server) judges them object by object; alone, a file
// is refused with the rule IDs the webhook gives; `rrguard diff` lists the sessions the change
// adds and removes.
package gitops

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/webhook"
	"github.com/rrguard/rrguard/test/harness"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"
)

var h *harness.Harness

func TestMain(m *testing.M) { os.Exit(harness.Main(m, harness.Options{}, &h)) }

// The seed cluster with its two reflectors labelled and given cluster ID 1.0.0.1, no BGPPeer
// yet, the mesh on: the migration's middle step (docs: the seed story, test/scenarios).
var seedNodes = []struct {
	name, ip  string
	reflector bool
}{{"zyisy", "10.30.0.13", true}, {"uqwst", "10.30.0.14", false}, {"volwl", "10.30.0.15", false}, {"rxgks", "10.30.0.16", true}, {"qtwtv", "10.30.0.17", false}}

// The change, in two files: the peerings, and the mesh turned off.
const (
	peersYAML = `apiVersion: crd.projectcalico.org/v1
kind: BGPPeer
metadata:
  name: node-peer-to-rr
spec:
  nodeSelector: "!has(route-reflector)"
  peerSelector: "has(route-reflector)"
---
apiVersion: crd.projectcalico.org/v1
kind: BGPPeer
metadata:
  name: rr-to-rr-peer
spec:
  nodeSelector: "has(route-reflector)"
  peerSelector: "has(route-reflector)"
`
	meshOffYAML = `apiVersion: crd.projectcalico.org/v1
kind: BGPConfiguration
metadata:
  name: default
spec:
  nodeToNodeMeshEnabled: false
  asNumber: 63400
`
)

func TestChangeJudgedWhole(t *testing.T) {
	ctx := context.Background()
	var nodes []*unstructured.Unstructured
	for _, n := range seedNodes {
		labels := map[string]interface{}{"kubernetes.io/hostname": n.name}
		annotations := map[string]interface{}{"projectcalico.org/IPv4Address": n.ip + "/22"}
		if n.reflector {
			labels["route-reflector"] = "true"
			annotations["projectcalico.org/RouteReflectorClusterID"] = "1.0.0.1"
		}
		nodes = append(nodes, &unstructured.Unstructured{Object: map[string]interface{}{
			"apiVersion": "v1", "kind": "Node",
			"metadata": map[string]interface{}{"name": n.name, "labels": labels, "annotations": annotations},
			"status":   map[string]interface{}{"conditions": []interface{}{map[string]interface{}{"type": "Ready", "status": "True"}}},
		}})
	}
	if err := h.Create(ctx, nodes); err != nil {
		t.Fatal(err)
	}
	serveWebhook(ctx, t)
	rrguard, err := h.Build("./cmd/rrguard")
	if err != nil {
		t.Fatal(err)
	}
	changes := t.TempDir()
	for name, content := range map[string]string{"peers.yaml": peersYAML, "mesh-off.yaml": meshOffYAML} {
		if err := os.WriteFile(filepath.Join(changes, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := clientcmd.LoadFromFile(h.Kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	target := []string{"--kubeconfig", h.Kubeconfig, "--context", cfg.CurrentContext}
	cli := func(args ...string) (int, string, string) {
		t.Helper()
		cmd := exec.Command(rrguard, append(args, target...)...)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
	}

	// Object by object, as kubectl apply --dry-run=server asks the webhook, the mesh switch is
	// refused: the peers it needs are not in the cluster yet.
	dry := h.Kubectl(ctx, nil, "apply", "--dry-run=server", "-f", changes)
	if dry.Err == nil || !strings.Contains(dry.Stderr, validate.RuleRoutePropagation) {
		t.Fatalf("kubectl apply --dry-run=server -f changes/: %v\n%s%s", dry.Err, dry.Stdout, dry.Stderr)
	}

	t.Run("the files together are allowed", func(t *testing.T) {
		code, out, errOut := cli("validate", "-f", changes)
		if code != 0 || !strings.Contains(out, "No findings") {
			t.Errorf("exit %d, want 0 and no findings\n%s%s", code, out, errOut)
		}
		if !strings.Contains(errOut, "the files create 3 objects, change 0 and hold 0") {
			t.Errorf("stderr does not say what the files change: %s", errOut)
		}
	})

	t.Run("--live judges against the current context", func(t *testing.T) {
		cmd := exec.Command(rrguard, "validate", "--live", "-f", changes)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+h.Kubeconfig)
		if out, err := cmd.CombinedOutput(); err != nil || !strings.Contains(string(out), "the files create 3 objects") {
			t.Errorf("rrguard validate --live: %v\n%s", err, out)
		}
	})

	t.Run("the mesh switch alone is refused as the webhook refuses it", func(t *testing.T) {
		code, out, errOut := cli("validate", "-f", filepath.Join(changes, "mesh-off.yaml"), "-o", "json")
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
		}
		var doc struct {
			Findings []struct{ Rule, Action, Kind, Name string }
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		var cliRules []string
		for _, f := range doc.Findings {
			if f.Action == string(validate.Deny) {
				cliRules = append(cliRules, f.Rule)
				if f.Kind != "BGPConfiguration" || f.Name != "default" {
					t.Errorf("%s held against %s %s, want the BGPConfiguration, as the webhook refuses it", f.Rule, f.Kind, f.Name)
				}
			}
		}
		mesh := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(meshOffYAML), &mesh.Object); err != nil {
			t.Fatal(err)
		}
		err := h.Client.Create(ctx, mesh, client.DryRunAll)
		if err == nil {
			t.Fatal("the webhook allows the mesh switch alone")
		}
		hookRules := ruleIDs(err.Error())
		if cliRules = sortedSet(cliRules); len(cliRules) == 0 || !slices.Equal(cliRules, hookRules) {
			t.Errorf("rrguard validate refuses with %v, the webhook with %v:\n%v", cliRules, hookRules, err)
		}
	})

	t.Run("SARIF and HTML, as CI takes them", func(t *testing.T) {
		code, out, errOut := cli("validate", "-f", filepath.Join(changes, "mesh-off.yaml"), "-o", "sarif")
		if code != 1 {
			t.Fatalf("exit %d, want 1\n%s%s", code, out, errOut)
		}
		var log struct {
			Runs []struct {
				Results []struct {
					RuleID    string `json:"ruleId"`
					Locations []struct {
						PhysicalLocation *struct {
							ArtifactLocation struct{ URI string } `json:"artifactLocation"`
							Region           struct{ StartLine int }
						} `json:"physicalLocation"`
					} `json:"locations"`
				} `json:"results"`
			} `json:"runs"`
		}
		if err := json.Unmarshal([]byte(out), &log); err != nil || len(log.Runs) != 1 || len(log.Runs[0].Results) == 0 {
			t.Fatalf("SARIF: %v\n%s", err, out)
		}
		for _, r := range log.Runs[0].Results {
			p := r.Locations[0].PhysicalLocation
			if p == nil || !strings.HasSuffix(p.ArtifactLocation.URI, "/mesh-off.yaml") || p.Region.StartLine != 1 {
				t.Errorf("%s located at %+v, want mesh-off.yaml line 1", r.RuleID, p)
			}
		}
		code, out, errOut = cli("validate", "-f", changes, "-o", "html", "-q")
		if code != 0 || !strings.Contains(out, "<html") || !strings.Contains(out, "The change introduces nothing deny-level.") {
			t.Errorf("-o html: exit %d, stderr %s\n%.500s", code, errOut, out)
		}
	})

	t.Run("diff lists the sessions the change adds and removes", func(t *testing.T) {
		code, out, errOut := cli("diff", "-f", changes)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		for _, want := range []string{
			"before: 5 nodes, 2 reflectors, mesh on, AS 64512", "after:  5 nodes, 2 reflectors, mesh off, AS 63400",
			"+ added    qtwtv", "rr-client  node-peer-to-rr", "+ added    rxgks    zyisy  IPv4      bgppeer    rr-to-rr-peer",
			"- removed  qtwtv    uqwst  IPv4      mesh",
			// The reflectors left the mesh when they took the cluster ID: the peerings bring
			// them back.
			"+ regained  rxgks    IPv4      qtwtv, uqwst, volwl, zyisy", "sessions: 7 added, 3 removed; routes: 0 lost, 14 regained",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("diff lacks %q:\n%s", want, out)
			}
		}
		code, out, errOut = cli("diff", "-f", changes, "-o", "json", "-q")
		if code != 0 || errOut != "" {
			t.Fatalf("exit %d, stderr %s", code, errOut)
		}
		var doc struct {
			SessionsAdded []struct {
				Kind    string
				Sources []string
			}
			SessionsRemoved []struct{ Kind string }
			RoutesLost      []json.RawMessage
			RoutesRegained  []json.RawMessage
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, out)
		}
		clients := 0
		for _, s := range doc.SessionsAdded {
			if s.Kind == "rr-client" && slices.Equal(s.Sources, []string{"node-peer-to-rr"}) {
				clients++
			}
		}
		if clients != 6 || len(doc.SessionsAdded) != 7 || len(doc.SessionsRemoved) != 3 || len(doc.RoutesLost) != 0 || len(doc.RoutesRegained) != 14 {
			t.Errorf("json: %d sessions added (%d reflector-client), %d removed, routes %d lost, %d regained; want 7 (6), 3, 0, 14:\n%s",
				len(doc.SessionsAdded), clients, len(doc.SessionsRemoved), len(doc.RoutesLost), len(doc.RoutesRegained), out)
		}
	})
}

// ruleIDs returns the rule IDs a denial names ("[route-propagation] …"), sorted.
func ruleIDs(text string) []string {
	var out []string
	for _, r := range validate.Rules {
		if strings.Contains(text, "["+r.ID+"]") {
			out = append(out, r.ID)
		}
	}
	return sortedSet(out)
}

func sortedSet(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// serveWebhook serves rrguard's webhook from the test process on a free port, with a
// certificate of a throw-away CA, registered as config/webhook/webhooks.yaml registers it,
// and waits until the API server calls it.
func serveWebhook(ctx context.Context, t *testing.T) {
	t.Helper()
	ca, certDir := harness.ServingDir(t, "rrguard-gitops-ca")
	port := harness.FreePortFor(t)
	ctx, cancel := context.WithCancel(ctx)
	srv, err := webhook.NewServer(ctx, h.Config, webhook.Options{Host: "127.0.0.1", Port: port, CertDir: certDir,
		MetricsAddr: "0", ProbeAddr: "0", Config: validate.DefaultConfig(), AuditDisabled: true})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Start(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	harness.Eventually(t, "the webhook's informers synced", time.Minute, func() error {
		if !srv.Synced() {
			return errors.New("not synced")
		}
		return nil
	})
	if err := h.RegisterWebhooks(ctx, filepath.Join(h.RootDir, "config", "webhook", "webhooks.yaml"), fmt.Sprintf("https://127.0.0.1:%d", port), ca.CertPEM); err != nil {
		t.Fatal(err)
	}
	// The API server picks up webhook configurations asynchronously: a BGPPeer whose
	// selector does not parse is refused by rrguard, and only by it.
	probe := &unstructured.Unstructured{Object: map[string]interface{}{
		"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPPeer", "metadata": map[string]interface{}{"name": "probe"},
		"spec": map[string]interface{}{"peerSelector": "has(", "nodeSelector": "all()"},
	}}
	harness.Eventually(t, "the API server calls rrguard", 30*time.Second, func() error {
		if err := h.Client.Create(ctx, probe, client.DryRunAll); err == nil || !strings.Contains(err.Error(), validate.RuleSelectorSyntax) {
			return fmt.Errorf("a broken selector: %v", err)
		}
		return nil
	})
}
