//go:build e2e

package audit

import (
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
)

// rrguard graph and audit -o html read the live cluster through a kubeconfig, as audit does:
// the broken state is drawn with lonely isolated and the clients' reflectors apart.
func TestGraphOfTheLiveCluster(t *testing.T) {
	ctx := context.Background()
	if err := h.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.Create(ctx, objects(t, broken)); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(cliBin, "graph", "--kubeconfig", h.Kubeconfig, "-o", "json").Output()
	if err != nil {
		t.Fatalf("rrguard graph --kubeconfig: %v\n%s", err, out)
	}
	var g struct {
		Boxes []struct {
			ID, Role string
			Isolated bool
		}
	}
	if err := json.Unmarshal(out, &g); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	roles := map[string]string{}
	for _, b := range g.Boxes {
		roles[b.ID] = b.Role
		if (b.ID == "node-lonely") != b.Isolated {
			t.Errorf("box %s isolated: %v; only lonely has no session", b.ID, b.Isolated)
		}
	}
	for id, role := range map[string]string{"node-r1": "reflector", "node-r2": "reflector", "node-c1": "client", "node-c2": "client", "node-lonely": "node"} {
		if roles[id] != role {
			t.Errorf("%s drawn as %q, want %s (boxes %v)", id, roles[id], role, roles)
		}
	}
	cmd := exec.Command(cliBin, "audit", "--kubeconfig", h.Kubeconfig, "-o", "html")
	page, _ := cmd.Output()
	if code := cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(string(page), "route-propagation") || !strings.Contains(string(page), `id="node-lonely"`) {
		t.Errorf("rrguard audit -o html: exit %d, want 1 and a page with the route-propagation finding and lonely", code)
	}
}
