package conformance

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// renderedNode is the node confd renders in every scenario: execute_test_suite in
// confd/tests/test_suite_common.sh exports NODENAME=kube-master for all of them.
const renderedNode = "kube-master"

// categories are the parts of confd's suite driven by calicoctl input files alone
// (run_individual_test and run_individual_test_oneshot in test_suite_common.sh).
var categories = []string{"mesh", "explicit_peering"}

// Kinds rrguard reads, and kinds confd's fixtures carry that have no bearing on which
// sessions are configured (rrguard skips them with a note). Any other kind makes a scenario
// inapplicable.
var (
	sessionKinds   = []string{"Node", "BGPPeer", "BGPConfiguration"}
	unrelatedKinds = []string{"IPPool"}
)

// scenario is one rendering of confd's suite: the calicoctl inputs applied in order, and the
// golden configurations confd must then render.
type scenario struct {
	// name is the directory below mock_data/calicoctl and compiled_templates, e.g.
	// "mesh/communities/step2".
	name   string
	inputs []string
	// bird and bird6 are the golden bird.cfg and bird6.cfg.
	bird, bird6 string
	// skip says why the scenario cannot be checked; "" when it can.
	skip string
}

// scenarios lists every directory of the mesh and explicit-peering parts of the suite that
// has an input.yaml or a golden bird.cfg.
func scenarios(t *testing.T) []scenario {
	inputRoot := filepath.Join(confdTests, "mock_data", "calicoctl")
	goldenRoot := filepath.Join(confdTests, "compiled_templates")
	names := map[string]bool{}
	for _, c := range categories {
		for _, walk := range []struct{ root, file string }{{inputRoot, "input.yaml"}, {goldenRoot, "bird.cfg"}} {
			err := filepath.WalkDir(filepath.Join(walk.root, c), func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() || d.Name() != walk.file {
					return err
				}
				rel, err := filepath.Rel(walk.root, filepath.Dir(path))
				names[filepath.ToSlash(rel)] = true
				return err
			})
			if err != nil {
				t.Fatalf("list confd's %s files: %v", walk.file, err)
			}
		}
	}
	var out []scenario
	for name := range names {
		s := scenario{
			name:  name,
			bird:  filepath.Join(goldenRoot, filepath.FromSlash(name), "bird.cfg"),
			bird6: filepath.Join(goldenRoot, filepath.FromSlash(name), "bird6.cfg"),
		}
		// A step (…/step2) is applied over the inputs of the scenario it continues, as
		// run_individual_test does: its input.yaml after the parent's.
		parts := strings.Split(name, "/")
		for i := 2; i <= len(parts); i++ {
			in := filepath.Join(inputRoot, filepath.FromSlash(strings.Join(parts[:i], "/")), "input.yaml")
			if exists(in) {
				s.inputs = append(s.inputs, in)
			}
		}
		switch own := filepath.Join(inputRoot, filepath.FromSlash(name), "input.yaml"); {
		case !exists(own):
			s.skip = "golden without input.yaml (its test in test_suite_common.sh writes the input inline)"
		case !exists(s.bird) || !exists(s.bird6):
			s.skip = "input.yaml without golden bird.cfg and bird6.cfg"
		default:
			s.skip = inapplicableKinds(t, s.inputs)
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// inapplicableKinds returns why the inputs cannot be checked — kinds rrguard does not read
// that may change the sessions — or "".
func inapplicableKinds(t *testing.T, inputs []string) string {
	var unknown []string
	for _, in := range inputs {
		data, err := os.ReadFile(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---") {
			var obj struct {
				Kind string `json:"kind"`
			}
			if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
				t.Fatalf("%s: %v", in, err)
			}
			if obj.Kind != "" && !slices.Contains(sessionKinds, obj.Kind) && !slices.Contains(unrelatedKinds, obj.Kind) && !slices.Contains(unknown, obj.Kind) {
				unknown = append(unknown, obj.Kind)
			}
		}
	}
	if len(unknown) == 0 {
		return ""
	}
	return "input kinds rrguard does not read: " + strings.Join(unknown, ", ")
}

// sessionKey is what a session must agree on: who each end is and how it presents itself.
type sessionKey struct {
	Family   string
	PeerIP   string
	Port     int
	PeerAS   uint32
	LocalAS  uint32
	RRClient bool
}

func (k sessionKey) String() string {
	port := "default port"
	if k.Port != 0 {
		port = fmt.Sprintf("port %d", k.Port)
	}
	rr := ""
	if k.RRClient {
		rr = ", rr client"
	}
	return fmt.Sprintf("%s %s %s, peer AS %d, local AS %d%s", k.Family, k.PeerIP, port, k.PeerAS, k.LocalAS, rr)
}

// canonicalPort maps BGP's own port, written or not, to 0.
func canonicalPort(p int) int {
	if p == 179 {
		return 0
	}
	return p
}

func canonicalIP(s string) string {
	if a, err := netip.ParseAddr(s); err == nil {
		return a.String()
	}
	return s
}

// The part of `rrguard sessions -o json` compared here.
type sessionsOutput struct {
	Nodes []struct {
		Name      string `json:"name"`
		AS        uint32 `json:"as"`
		ClusterID string `json:"clusterID"`
		Sessions  []struct {
			Family   string `json:"family"`
			PeerIP   string `json:"peerIP"`
			Port     int    `json:"port"`
			PeerNode string `json:"peerNode"`
			PeerAS   uint32 `json:"peerAS"`
			LocalAS  uint32 `json:"localAS"`
			RRClient bool   `json:"rrClient"`
			Source   string `json:"source"`
		} `json:"sessions"`
	} `json:"nodes"`
}

func TestConfdScenarios(t *testing.T) {
	all := scenarios(t)
	if len(all) == 0 {
		t.Fatalf("no scenario under %s", confdTests)
	}
	var agree, disagree []string
	filtered := 0 // left out by -run
	skipped := map[string][]string{}
	for _, s := range all {
		if s.skip != "" {
			skipped[s.skip] = append(skipped[s.skip], s.name)
			continue
		}
		ran := false
		ok := t.Run(s.name, func(t *testing.T) { ran = true; checkScenario(t, s) })
		switch {
		case !ran:
			filtered++
		case ok:
			agree = append(agree, s.name)
		default:
			disagree = append(disagree, s.name)
		}
	}
	nSkipped := 0
	var reasons []string
	for reason, names := range skipped {
		nSkipped += len(names)
		reasons = append(reasons, fmt.Sprintf("%d %s: %s", len(names), reason, strings.Join(names, ", ")))
	}
	sort.Strings(reasons)
	fmt.Printf("confd conformance: %d scenarios, %d agree, %d skipped (%s)\n", len(all), len(agree), nSkipped, strings.Join(reasons, "; "))
	fmt.Printf("  not read: %s documents (no bearing on sessions); kubectl-input.yaml (Services, EndpointSlices: service advertisement)\n", strings.Join(unrelatedKinds, ", "))
	if filtered > 0 {
		fmt.Printf("  not run (-run): %d\n", filtered)
	}
	if len(disagree) > 0 {
		fmt.Printf("  disagree (%d): %s\n", len(disagree), strings.Join(disagree, ", "))
	}
}

// checkScenario compares rrguard's sessions of the rendered node with the golden ones.
func checkScenario(t *testing.T, s scenario) {
	want := map[sessionKey][]string{}
	// bird6.cfg of a node without an IPv6 address has no template, hence no AS.
	var goldenAS uint32
	var diff []string
	goldenClusterID := ""
	for _, g := range []struct{ path, family string }{{s.bird, "IPv4"}, {s.bird6, "IPv6"}} {
		data, err := os.ReadFile(g.path)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := parseGolden(string(data), g.family)
		if err != nil {
			t.Fatalf("golden %s: %v", g.path, err)
		}
		switch {
		case goldenAS == 0:
			goldenAS = cfg.NodeAS
		case cfg.NodeAS != 0 && cfg.NodeAS != goldenAS:
			diff = append(diff, fmt.Sprintf("golden: bird.cfg says AS %d, bird6.cfg AS %d", goldenAS, cfg.NodeAS))
		}
		for _, gs := range cfg.Sessions {
			k := sessionKey{Family: gs.Family, PeerIP: gs.PeerIP.String(), Port: canonicalPort(gs.Port), PeerAS: gs.PeerAS, LocalAS: gs.LocalAS, RRClient: gs.RRClient}
			want[k] = append(want[k], "protocol bgp "+gs.Name)
			if gs.ClusterID != "" {
				goldenClusterID = gs.ClusterID
			}
		}
	}

	args := []string{"sessions"}
	for _, in := range s.inputs {
		args = append(args, "-f", in)
	}
	args = append(args, "--node", renderedNode, "-o", "json")
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(rrguardBin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			t.Fatal(err)
		}
		t.Fatalf("rrguard %s: %v, so no sessions to compare with confd's:\n%s", strings.ReplaceAll(strings.Join(args, " "), confdTests+string(filepath.Separator), ""), err,
			strings.ReplaceAll(strings.TrimSpace(stderr.String()), confdTests+string(filepath.Separator), ""))
	}
	var out sessionsOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("rrguard sessions -o json: %v\n%s", err, stdout.String())
	}
	if len(out.Nodes) != 1 || out.Nodes[0].Name != renderedNode {
		t.Fatalf("rrguard sessions --node %s listed %d nodes, want that one:\n%s", renderedNode, len(out.Nodes), stdout.String())
	}
	node := out.Nodes[0]
	got := map[sessionKey][]string{}
	for _, ss := range node.Sessions {
		k := sessionKey{Family: ss.Family, PeerIP: canonicalIP(ss.PeerIP), Port: canonicalPort(ss.Port), PeerAS: ss.PeerAS, LocalAS: ss.LocalAS, RRClient: ss.RRClient}
		peer := ss.PeerNode
		if peer == "" {
			peer = "outside the cluster"
		}
		got[k] = append(got[k], fmt.Sprintf("source %s, peer node %s", ss.Source, peer))
	}

	if goldenAS != 0 && node.AS != goldenAS {
		diff = append(diff, fmt.Sprintf("node AS: rrguard %d, confd %d (template bgp_template's local as)", node.AS, goldenAS))
	}
	if goldenClusterID != "" && node.ClusterID != goldenClusterID {
		diff = append(diff, fmt.Sprintf("cluster ID: rrguard %q, confd %q (rr cluster id)", node.ClusterID, goldenClusterID))
	}
	diff = append(diff, sessionDiff("missing (confd configures it, rrguard does not)", want, got)...)
	diff = append(diff, sessionDiff("extra (rrguard lists it, confd does not configure it)", got, want)...)
	golden := strings.TrimPrefix(s.bird, confdTests+string(filepath.Separator))
	if len(diff) > 0 {
		t.Errorf("%s: rrguard's sessions of %s differ from confd's golden %s:\n  %s", s.name, renderedNode, golden, strings.Join(diff, "\n  "))
		return
	}
	t.Logf("%d sessions agree with %s and bird6.cfg", len(node.Sessions), golden)
}

// sessionDiff lists, as "label: session [where]", the sessions of a that b lacks, counting
// repeated sessions.
func sessionDiff(label string, a, b map[sessionKey][]string) []string {
	var out []string
	for k, whereA := range a {
		for i := len(b[k]); i < len(whereA); i++ {
			out = append(out, fmt.Sprintf("%s: %s [%s]", label, k, whereA[i]))
		}
	}
	sort.Strings(out)
	return out
}
