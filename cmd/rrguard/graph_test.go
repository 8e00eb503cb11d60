package main

import (
	"encoding/json"
	"encoding/xml"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGraphSeedSVG(t *testing.T) {
	code, out, errOut := runCLI(t, "", "graph", "-f", seedDir)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if err := xml.Unmarshal([]byte(out), new(struct {
		XMLName xml.Name `xml:"http://www.w3.org/2000/svg svg"`
	})); err != nil {
		t.Fatalf("not an SVG document: %v\n%s", err, out)
	}
	for _, n := range []string{"zyisy", "uqwst", "volwl", "rxgks", "qtwtv"} {
		if !strings.Contains(out, `id="node-`+n+`"`) || !strings.Contains(out, ">"+n+"</text>") {
			t.Errorf("node %s not drawn", n)
		}
	}
}

// The page's findings are the audit's; the review's when drawing a review.
func TestGraphHTMLAndAuditHTML(t *testing.T) {
	dir := copySeed(t, map[string][2]string{"peer.yaml": {`peerSelector: "has(route-reflector)"`, `peerSelector: "has(router-reflector)"`}})
	code, graphPage, errOut := runCLI(t, "", "graph", "-f", dir, "-o", "html")
	if code != 0 {
		t.Fatalf("graph: exit %d: %s", code, errOut)
	}
	code, auditPage, errOut := runCLI(t, "", "audit", "-f", dir, "-o", "html")
	if code != 1 {
		t.Fatalf("audit -o html: exit %d, want 1 (deny-level findings): %s", code, errOut)
	}
	for _, page := range []string{graphPage, auditPage} {
		for _, want := range []string{"<!DOCTYPE html>", "<svg", "route-propagation", "selector-matches-nothing", `href="#node-qtwtv"`, `<g id="node-qtwtv" class="box node isolated">`} {
			if !strings.Contains(page, want) {
				t.Errorf("page lacks %q", want)
			}
		}
	}
	if code, out, _ := runCLI(t, "", "validate", "-f", seedDir, "-o", "html"); code != 0 || !strings.Contains(out, "No findings") {
		t.Errorf("validate -o html: exit %d", code)
	}
}

func TestGraphReview(t *testing.T) {
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u1","kind":{"group":"crd.projectcalico.org","version":"v1","kind":"BGPPeer"},
"resource":{"group":"crd.projectcalico.org","version":"v1","resource":"bgppeers"},"name":"node-peer-to-rr","operation":"DELETE","userInfo":{"username":"bob"},
"oldObject":{"apiVersion":"crd.projectcalico.org/v1","kind":"BGPPeer","metadata":{"name":"node-peer-to-rr"},"spec":{"nodeSelector":"!has(route-reflector)","peerSelector":"has(route-reflector)"}}}}`
	file := filepath.Join(t.TempDir(), "review.json")
	if err := os.WriteFile(file, []byte(review), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runCLI(t, "", "graph", "-f", seedDir, "--review", file, "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var g struct {
		Review   bool
		Sessions []struct{ Kind, Change string }
		Missing  []struct{ Change string }
	}
	if err := json.Unmarshal([]byte(out), &g); err != nil {
		t.Fatal(err)
	}
	removed := 0
	for _, s := range g.Sessions {
		if s.Change == "removed" {
			removed++
		}
	}
	if !g.Review || removed != 6 || len(g.Missing) == 0 || g.Missing[0].Change != "lost" {
		t.Errorf("review graph: %+v; want the 6 client sessions removed and routes lost", g)
	}
	code, page, errOut := runCLI(t, review, "graph", "-f", seedDir, "--review", "-", "-o", "html")
	if code != 0 || !strings.Contains(page, "The webhook would refuse the change.") || !strings.Contains(page, "route-propagation") {
		t.Errorf("review page: exit %d: %s", code, errOut)
	}
}
