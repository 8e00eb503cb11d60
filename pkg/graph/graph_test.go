package graph_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"math/rand"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	apiv3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/projectcalico/api/pkg/lib/numorstring"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/cluster"
	"github.com/rrguard/rrguard/pkg/graph"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	"golang.org/x/net/html"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var seedNodes = []string{"zyisy", "uqwst", "volwl", "rxgks", "qtwtv"}

func load(t testing.TB, dir string) *model.Snapshot {
	t.Helper()
	m, err := cluster.LoadFiles([]string{dir}, cluster.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return model.NewSnapshot(m.State())
}

// seedWith is the seed with one file's text replaced.
func seedWith(t *testing.T, file, old, new string) string {
	return validatetest.CopyWith(t, "../../examples/seed", map[string][2]string{file: {old, new}})
}

// svgBoxes parses an SVG document with encoding/xml (failing on malformed XML) and returns,
// per box id, its CSS classes and its text.
func svgBoxes(t *testing.T, doc []byte) map[string]svgBox {
	t.Helper()
	dec := xml.NewDecoder(bytes.NewReader(doc))
	boxes := map[string]svgBox{}
	var stack []string // ids of the enclosing <g class="box">
	root := false
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed XML: %v", err)
		}
		switch el := tok.(type) {
		case xml.StartElement:
			if !root {
				if el.Name.Local != "svg" || el.Name.Space != "http://www.w3.org/2000/svg" {
					t.Fatalf("root element is %v, want svg in the SVG namespace", el.Name)
				}
				root = true
			}
			id := ""
			if el.Name.Local == "g" && strings.HasPrefix(attr(el, "class"), "box ") {
				id = attr(el, "id")
				boxes[id] = svgBox{classes: strings.Fields(attr(el, "class"))}
			}
			stack = append(stack, id)
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		case xml.CharData:
			for _, id := range stack {
				if id != "" {
					b := boxes[id]
					b.text += string(el) + "\n"
					boxes[id] = b
				}
			}
		}
	}
	if !root {
		t.Fatal("no svg element")
	}
	return boxes
}

type svgBox struct {
	classes []string
	text    string
}

func (b svgBox) has(class string) bool { return slices.Contains(b.classes, class) }

func attr(el xml.StartElement, name string) string {
	for _, a := range el.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func svgOf(t *testing.T, g *graph.Graph) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := g.WriteSVG(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestSeedSVGNamesEveryNode(t *testing.T) {
	g, err := graph.Build(load(t, "../../examples/seed").Analysis, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	boxes := svgBoxes(t, svgOf(t, g))
	for _, n := range seedNodes {
		b, ok := boxes[graph.NodeID(n)]
		if !ok {
			t.Fatalf("no box for node %s; boxes: %v", n, boxes)
		}
		if !strings.Contains(b.text, n+"\n") {
			t.Errorf("box of %s does not name it: %q", n, b.text)
		}
		if b.has("isolated") || b.has("cutoff") || b.has("partial") {
			t.Errorf("the seed's final state works, yet %s is drawn broken: %v", n, b.classes)
		}
		wantReflector := n == "zyisy" || n == "rxgks"
		if b.has("reflector") != wantReflector {
			t.Errorf("%s drawn as reflector: %v, want %v", n, b.has("reflector"), wantReflector)
		}
		if wantReflector && !strings.Contains(b.text, "RR 1.0.0.1 · AS 63400") {
			t.Errorf("reflector %s does not show its cluster ID and AS: %q", n, b.text)
		}
	}
	// Each client has a session with each reflector, the reflectors one with each other.
	kinds := map[string]int{}
	for _, s := range g.Sessions {
		kinds[s.Kind]++
		if s.OneSided {
			t.Errorf("one-sided session in the seed: %+v", s)
		}
	}
	if kinds[graph.KindRRClient] != 6 || kinds[graph.KindBGPPeer] != 1 || len(g.Sessions) != 7 {
		t.Errorf("sessions by kind %v, want 6 reflector-client and 1 BGPPeer (reflector to reflector)", kinds)
	}
	if len(g.Missing) != 0 {
		t.Errorf("routes missing in the seed: %+v", g.Missing[0])
	}
}

func TestLabelTypoDrawsTheClientsCutOff(t *testing.T) {
	dir := seedWith(t, "peer.yaml", `peerSelector: "has(route-reflector)"`, `peerSelector: "has(router-reflector)"`)
	g, err := graph.Build(load(t, dir).Analysis, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	boxes := svgBoxes(t, svgOf(t, g))
	for _, n := range []string{"qtwtv", "uqwst", "volwl"} {
		if b := boxes[graph.NodeID(n)]; !b.has("isolated") || !strings.Contains(b.text, "isolated: no BGP session") {
			t.Errorf("client %s is not drawn cut off: classes %v, text %q", n, b.classes, b.text)
		}
	}
	for _, n := range []string{"zyisy", "rxgks"} {
		b := boxes[graph.NodeID(n)]
		if b.has("isolated") || !b.has("partial") || !strings.Contains(b.text, "misses routes of 3") {
			t.Errorf("reflector %s: classes %v, text %q; want it drawn missing the 3 clients' routes", n, b.classes, b.text)
		}
	}
}

func TestMeshOffMistakeIsolatesEveryNode(t *testing.T) {
	// The seed's nodes before any reflector, with the mesh turned off.
	dir := seedWith(t, "rxgks.yaml", "routeReflectorClusterID: 1.0.0.1", "")
	for _, f := range []string{"zyisy.yaml", "peer.yaml", "rr-to-rr-peer.yaml"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	g, err := graph.Build(load(t, dir).Analysis, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	boxes := svgBoxes(t, svgOf(t, g))
	for _, n := range seedNodes {
		if !boxes[graph.NodeID(n)].has("isolated") {
			t.Errorf("%s not drawn isolated with the mesh off and no reflector: %v", n, boxes[graph.NodeID(n)].classes)
		}
	}
	if len(g.Sessions) != 0 {
		t.Errorf("sessions drawn with the mesh off and no peer: %+v", g.Sessions)
	}
}

func TestMeshDrawsMeshSessions(t *testing.T) {
	dir := seedWith(t, "bgpconfig.yaml", "nodeToNodeMeshEnabled: false", "nodeToNodeMeshEnabled: true")
	for _, f := range []string{"zyisy.yaml", "rxgks.yaml", "peer.yaml", "rr-to-rr-peer.yaml"} {
		if err := os.Remove(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	g, err := graph.Build(load(t, dir).Analysis, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(g.Sessions) != 10 {
		t.Fatalf("%d session lines among 5 meshed nodes, want 10", len(g.Sessions))
	}
	for _, s := range g.Sessions {
		if s.Kind != graph.KindMesh || !slices.Equal(s.Sources, []string{"mesh"}) {
			t.Errorf("session %+v, want a mesh one", s)
		}
	}
}

func generated(t testing.TB, l validatetest.Layout) *model.Snapshot {
	t.Helper()
	return model.NewSnapshot(calico.NewState(validatetest.Generate(l)))
}

func TestLargeClusterIsDrawnByClasses(t *testing.T) {
	s := generated(t, validatetest.Layout{Nodes: 5000, Reflectors: 20, Zones: 4})
	g, err := graph.Build(s.Analysis, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	members, reflectors := 0, 0
	var classes []string
	for _, b := range g.Boxes {
		members += len(b.Members)
		switch b.Role {
		case graph.RoleReflector:
			reflectors++
			if len(b.Members) != 1 {
				t.Errorf("reflector box %s holds %d nodes, want one reflector per box", b.ID, len(b.Members))
			}
		case graph.RoleClient:
			classes = append(classes, b.Label)
		default:
			t.Errorf("box %s has role %s", b.ID, b.Role)
		}
	}
	slices.Sort(classes)
	want := []string{"1,245 clients, zone zone-0", "1,245 clients, zone zone-1", "1,245 clients, zone zone-2", "1,245 clients, zone zone-3"}
	if members != 5000 || reflectors != 20 || !slices.Equal(classes, want) {
		t.Errorf("%d nodes drawn, %d reflector boxes, client classes %q; want 5000, 20, %q", members, reflectors, classes, want)
	}
	// Each zone's clients peer with their zone's 5 reflectors only.
	for _, b := range g.Boxes {
		if b.Role != graph.RoleClient {
			continue
		}
		zone := strings.TrimPrefix(b.Label, "1,245 clients, zone ")
		peers := 0
		for _, se := range g.Sessions {
			if se.From != b.ID && se.To != b.ID {
				continue
			}
			other := g.Box(se.From)
			if other == b {
				other = g.Box(se.To)
			}
			n := s.State.Node(other.Members[0])
			if z := n.Labels()["topology.kubernetes.io/zone"]; z != zone || se.Kind != graph.KindRRClient {
				t.Errorf("%s has a %s session with %s in %s", b.Label, se.Kind, other.Label, z)
			}
			peers++
		}
		if peers != 5 {
			t.Errorf("%s: %d session lines, want 5 (its zone's reflectors)", b.Label, peers)
		}
	}
}

func TestNamedNodeIsDrawnOnItsOwn(t *testing.T) {
	s := generated(t, validatetest.Layout{Nodes: 500, Reflectors: 3})
	g, err := graph.Build(s.Analysis, graph.Options{Nodes: []string{"node-00100"}})
	if err != nil {
		t.Fatal(err)
	}
	own := g.Box(graph.NodeID("node-00100"))
	if own == nil || len(own.Members) != 1 {
		t.Fatalf("node-00100 has no box of its own: %+v", own)
	}
	var class *graph.Box
	for _, b := range g.Boxes {
		if b.Role == graph.RoleClient && b != own {
			class = b
		}
	}
	if class == nil || class.Label != "496 clients, zone zone-0" || slices.Contains(class.Members, "node-00100") {
		t.Fatalf("the other clients' box is %v, want 496 clients without node-00100", class)
	}
	if _, err := graph.Build(s.Analysis, graph.Options{Nodes: []string{"node-99999"}}); err == nil || !strings.Contains(err.Error(), "node-99999") {
		t.Errorf("an unknown --node: %v, want an error naming it", err)
	}
}

func TestTooManyClassesIsRefused(t *testing.T) {
	var objs []*calico.Object
	for i := range graph.MaxBoxes + 10 {
		o := validatetest.Node(fmt.Sprintf("n%d", i), fmt.Sprintf("10.0.%d.%d", i/250, i%250+1), "a", "")
		o.CoreNode.Annotations["projectcalico.org/ASNumber"] = fmt.Sprint(65000 + i)
		objs = append(objs, &calico.Object{Kind: o.Kind, Name: o.Name, CoreNode: o.CoreNode, Node: calico.NodeFromCore(o.CoreNode)})
	}
	s := model.NewSnapshot(calico.NewState(objs))
	if len(s.Analysis.Classes) <= graph.MaxBoxes {
		t.Fatalf("%d classes: the test needs more than %d", len(s.Analysis.Classes), graph.MaxBoxes)
	}
	if _, err := graph.Build(s.Analysis, graph.Options{}); err == nil || !strings.Contains(err.Error(), "--node") {
		t.Errorf("Build = %v, want a refusal that says what to do", err)
	}
}

func TestReviewDrawsWhatTheChangeRemoves(t *testing.T) {
	before := load(t, "../../examples/seed")
	peer := &calico.Object{Kind: calico.KindBGPPeer, Group: calico.GroupCRD, Name: "node-peer-to-rr"}
	after := model.NewSnapshot(model.Apply(before.State, model.Change{Operation: model.Delete, Old: peer}))
	g, err := graph.Compare(before.Analysis, after.Analysis, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	removed, kept := 0, 0
	for _, s := range g.Sessions {
		switch {
		case s.Change == graph.Removed && s.Kind == graph.KindRRClient:
			removed++
		case s.Change == "" && s.Kind == graph.KindBGPPeer:
			kept++
		default:
			t.Errorf("session %+v", s)
		}
	}
	if removed != 6 || kept != 1 {
		t.Errorf("%d reflector-client sessions removed, %d reflector sessions kept; want 6 and 1", removed, kept)
	}
	lost := 0
	for _, m := range g.Missing {
		if m.Change != graph.Lost {
			t.Errorf("missing routes %+v not marked lost by the change", m)
		}
		lost++
	}
	// Every pair but the two reflectors loses routes, both ways: 20 ordered pairs - 2.
	if lost != 18 {
		t.Errorf("%d ordered pairs lose routes, want 18", lost)
	}
	boxes := svgBoxes(t, svgOf(t, g))
	if !boxes[graph.NodeID("qtwtv")].has("isolated") {
		t.Errorf("after the change qtwtv is isolated; drawn %v", boxes[graph.NodeID("qtwtv")].classes)
	}
}

func TestReviewKeepsBoxesAcrossClassChanges(t *testing.T) {
	// 500 nodes are drawn by class; making a client a reflector moves it to another class.
	s := generated(t, validatetest.Layout{Nodes: 500, Reflectors: 3})
	node := validatetest.Node("node-00200", "10.1.0.200", "zone-0", "1.0.0.1")
	after := model.NewSnapshot(model.Apply(s.State, model.Change{Operation: model.Update, Object: node}))
	g, err := graph.Compare(s.Analysis, after.Analysis, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	own := g.BoxOf("node-00200")
	if own == nil || len(own.Members) != 1 || own.Role != graph.RoleReflector {
		t.Fatalf("the new reflector is drawn in %+v, want a reflector box of its own", own)
	}
	added := 0
	for _, se := range g.Sessions {
		if se.Change == graph.Added && (se.From == own.ID || se.To == own.ID) {
			added++
		}
		if se.Change == graph.Removed {
			t.Errorf("session removed: %+v", se)
		}
	}
	if added == 0 {
		t.Error("no session of the new reflector marked added")
	}
}

func TestHTMLLinksFindingsToNodes(t *testing.T) {
	dir := seedWith(t, "peer.yaml", `peerSelector: "has(route-reflector)"`, `peerSelector: "has(router-reflector)"`)
	s := load(t, dir)
	g, err := graph.Build(s.Analysis, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	findings := validate.New(validate.Config{}).Audit(context.Background(), s)
	var b bytes.Buffer
	if err := g.WriteHTML(&b, graph.Page{Title: "t", Findings: findings}); err != nil {
		t.Fatal(err)
	}
	doc, err := html.Parse(&b)
	if err != nil {
		t.Fatal(err)
	}
	ids, links := map[string]bool{}, map[string]bool{}
	var text strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			text.WriteString(n.Data + " ")
		}
		for _, a := range n.Attr {
			switch {
			case a.Key == "id":
				ids[a.Val] = true
			case a.Key == "href" && !strings.HasPrefix(a.Val, "#"):
				t.Errorf("<%s href=%q>: the page must not link or load anything outside itself", n.Data, a.Val)
			case a.Key == "href":
				links[a.Val[1:]] = true
			case a.Key == "src":
				t.Errorf("<%s src=%q>: the page must not load anything", n.Data, a.Val)
			}
		}
		for c := range n.ChildNodes() {
			walk(c)
		}
	}
	walk(doc)
	for _, f := range findings {
		if !strings.Contains(text.String(), f.Message) {
			t.Errorf("finding %s not in the page: %s", f.Rule, f.Message)
		}
	}
	for _, n := range []string{"qtwtv", "uqwst", "volwl"} {
		if !links[graph.NodeID(n)] {
			t.Errorf("no link to %s, named by the route-propagation finding", n)
		}
	}
	for l := range links {
		if !ids[l] {
			t.Errorf("link #%s leads nowhere", l)
		}
	}
}

func TestHTMLAtScaleAnchorsEveryNode(t *testing.T) {
	s := generated(t, validatetest.Layout{Nodes: 2000, Reflectors: 4, Zones: 2})
	g, err := graph.Build(s.Analysis, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := g.WriteHTML(&b, graph.Page{Title: "t"}); err != nil {
		t.Fatal(err)
	}
	for _, n := range s.State.NodeNames() {
		if !bytes.Contains(b.Bytes(), []byte(`id="`+graph.NodeID(n)+`"`)) {
			t.Fatalf("no anchor for %s", n)
		}
	}
}

func TestDOTAndJSON(t *testing.T) {
	g, err := graph.Build(load(t, "../../examples/seed").Analysis, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var dot bytes.Buffer
	if err := g.WriteDOT(&dot); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"graph rrguard {", `{ rank=same; "node-rxgks"; "node-zyisy"; }`, `"node-qtwtv" -- "node-rxgks"`} {
		if !strings.Contains(dot.String(), want) {
			t.Errorf("dot output lacks %q:\n%s", want, dot.String())
		}
	}
	var js bytes.Buffer
	if err := g.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	var out struct {
		Boxes []struct {
			ID, Role string
			Members  []string
		}
		Sessions []struct{ From, To, Kind string }
	}
	if err := json.Unmarshal(js.Bytes(), &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Boxes) != 5 || len(out.Sessions) != 7 {
		t.Errorf("JSON has %d boxes and %d sessions, want 5 and 7", len(out.Boxes), len(out.Sessions))
	}
}

// BenchmarkBuild5000 draws a 5,000-node cluster (20 reflectors in 4 zones) from its analysis:
// classes, sessions, missing routes, single points, layout and SVG.
func BenchmarkBuild5000(b *testing.B) {
	s := generated(b, validatetest.Layout{Nodes: 5000, Reflectors: 20, Zones: 4})
	b.ReportAllocs()
	for b.Loop() {
		g, err := graph.Build(s.Analysis, graph.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := g.WriteSVG(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAnalyzeAndBuild5000 is the whole of rrguard graph after reading the input: the
// analysis of the 5,000 nodes, then the picture.
func BenchmarkAnalyzeAndBuild5000(b *testing.B) {
	objs := validatetest.Generate(validatetest.Layout{Nodes: 5000, Reflectors: 20, Zones: 4})
	b.ReportAllocs()
	for b.Loop() {
		s := model.NewSnapshot(calico.NewState(objs))
		g, err := graph.Build(s.Analysis, graph.Options{})
		if err != nil {
			b.Fatal(err)
		}
		if err := g.WriteHTML(io.Discard, graph.Page{Title: "bench"}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestOneSidedSessionsAreDashed(t *testing.T) {
	// reversePeering: Manual without a BGPPeer for the reflectors' side: the clients configure
	// sessions the reflectors never answer.
	dir := seedWith(t, "peer.yaml", `peerSelector: "has(route-reflector)"`, "peerSelector: \"has(route-reflector)\"\n  reversePeering: Manual")
	g, err := graph.Build(load(t, dir).Analysis, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	oneSided := 0
	for _, s := range g.Sessions {
		if s.OneSided {
			oneSided++
			if !slices.Equal(s.Sources, []string{"node-peer-to-rr"}) {
				t.Errorf("one-sided session from %v", s.Sources)
			}
		}
	}
	if oneSided != 6 {
		t.Errorf("%d one-sided session lines, want 6 (3 clients × 2 reflectors)", oneSided)
	}
	if !bytes.Contains(svgOf(t, g), []byte(`class="s bgppeer onesided"`)) {
		t.Error("no dashed (onesided) line in the SVG")
	}
	if b := g.Box(graph.NodeID("uqwst")); !b.Isolated {
		t.Errorf("uqwst has only one-sided sessions, yet is not isolated: %+v", b)
	}
}

func TestSingleReflectorIsASinglePoint(t *testing.T) {
	dir := seedWith(t, "rxgks.yaml", "    routeReflectorClusterID: 1.0.0.1\n", "")
	g, err := graph.Build(load(t, dir).Analysis, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	boxes := svgBoxes(t, svgOf(t, g))
	if b := boxes[graph.NodeID("zyisy")]; !b.has("single") || !strings.Contains(b.text, "single point of failure") {
		t.Errorf("the only reflector zyisy: %v %q, want it marked a single point of failure", b.classes, b.text)
	}
	if b := boxes[graph.NodeID("rxgks")]; b.has("single") || b.has("reflector") {
		t.Errorf("rxgks, now a client: %v", b.classes)
	}
	seed, err := graph.Build(load(t, "../../examples/seed").Analysis, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if seed.Box(graph.NodeID("zyisy")).SinglePoint {
		t.Error("with two reflectors zyisy is no single point")
	}
}

func TestRoutersOutsideAndNodesWithoutBGP(t *testing.T) {
	dir := seedWith(t, "nodes.yaml", "  name: qtwtv\n  labels: {kubernetes.io/hostname: qtwtv}\n  annotations: {projectcalico.org/IPv4Address: 10.30.0.17/22}",
		"  name: qtwtv\n  labels: {kubernetes.io/hostname: qtwtv}\n  annotations: {projectcalico.org/IPv4Address: 10.30.0.17/22}\nstatus: {conditions: [{type: Ready, status: \"False\"}]}")
	if err := os.WriteFile(filepath.Join(dir, "tor.yaml"), []byte("apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: tor}\nspec: {nodeSelector: has(route-reflector), peerIP: 192.0.2.1, asNumber: 65001}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	g, err := graph.Build(load(t, dir).Analysis, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if b := g.Box(graph.NodeID("qtwtv")); b.Role != graph.RoleIdle {
		t.Errorf("NotReady qtwtv drawn as %s", b.Role)
	}
	router := g.Box("router-192.0.2.1")
	if router == nil || router.Role != graph.RoleExternal || router.AS != 65001 {
		t.Fatalf("router outside the cluster: %+v", router)
	}
	peers := 0
	for _, s := range g.Sessions {
		if s.To == router.ID || s.From == router.ID {
			peers++
		}
		if s.From == graph.NodeID("qtwtv") || s.To == graph.NodeID("qtwtv") {
			t.Errorf("a session of the NotReady node: %+v", s)
		}
	}
	if peers != 2 {
		t.Errorf("%d session lines to the router, want 2 (one per reflector)", peers)
	}
}

// randomCluster is a small cluster of every sort of node and peer rrguard models: reflectors
// with shared or own cluster IDs, other ASes, NotReady nodes, nodes without an address,
// selector, node-scoped and peerIP BGPPeers (to nodes and to routers outside), one-sided ones.
func randomCluster(rng *rand.Rand) []*calico.Object {
	var objs []*calico.Object
	n := 1 + rng.Intn(60)
	for i := range n {
		cid := ""
		if rng.Intn(4) == 0 {
			cid = fmt.Sprintf("1.0.0.%d", 1+rng.Intn(3))
		}
		o := validatetest.Node(fmt.Sprintf("n%02d", i), fmt.Sprintf("10.0.0.%d", i+1), fmt.Sprintf("z%d", rng.Intn(3)), cid)
		k := o.CoreNode
		switch rng.Intn(8) {
		case 0:
			k.Annotations[calico.AnnotationASNumber] = fmt.Sprint(65000 + rng.Intn(2))
		case 1:
			k.Status.Conditions[0].Status = "False"
		case 2:
			delete(k.Annotations, calico.AnnotationIPv4Address)
		}
		objs = append(objs, &calico.Object{Kind: o.Kind, Name: o.Name, CoreNode: k, Node: calico.NodeFromCore(k)})
	}
	selectors := []string{"", "has(route-reflector)", "!has(route-reflector)", "topology.kubernetes.io/zone == 'z1'", "all()"}
	for p := range rng.Intn(5) {
		peer := validatetest.Peer(fmt.Sprintf("p%d", p), selectors[rng.Intn(len(selectors))], selectors[1+rng.Intn(len(selectors)-1)])
		switch rng.Intn(5) {
		case 0:
			peer.Peer.Spec.PeerSelector = ""
			peer.Peer.Spec.PeerIP = fmt.Sprintf("10.0.0.%d", 1+rng.Intn(n+2)) // a node, or a router outside
			peer.Peer.Spec.ASNumber = numorstring.ASNumber(63400 + rng.Intn(2))
		case 1:
			peer.Peer.Spec.NodeSelector = ""
			peer.Peer.Spec.Node = fmt.Sprintf("n%02d", rng.Intn(n))
		case 2:
			manual := apiv3.ReversePeeringManual
			peer.Peer.Spec.ReversePeering = &manual
		}
		objs = append(objs, peer)
	}
	mesh := rng.Intn(2) == 0
	as := numorstring.ASNumber(63400)
	objs = append(objs, &calico.Object{Kind: calico.KindBGPConfiguration, Group: calico.GroupCRD, Name: "default",
		Config: &apiv3.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: apiv3.BGPConfigurationSpec{NodeToNodeMeshEnabled: &mesh, ASNumber: &as}}})
	return objs
}

// Whatever the cluster, every node is drawn in exactly one box, every line joins drawn boxes,
// and the SVG is well-formed; drawing a change between two such clusters too.
func TestRandomClustersDraw(t *testing.T) {
	rng := rand.New(rand.NewSource(16))
	for i := range 100 {
		before := model.NewSnapshot(calico.NewState(randomCluster(rng)))
		after := model.NewSnapshot(calico.NewState(randomCluster(rng)))
		threshold := []int{0, 5}[i%2] // node by node, or by class
		one, err := graph.Build(before.Analysis, graph.Options{Threshold: threshold})
		if err != nil {
			t.Fatal(err)
		}
		change, err := graph.Compare(before.Analysis, after.Analysis, graph.Options{Threshold: threshold})
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range []*graph.Graph{one, change} {
			drawn := map[string]int{}
			for _, b := range g.Boxes {
				for _, m := range b.Members {
					drawn[m]++
				}
			}
			for _, s := range []*model.Snapshot{before, after} {
				for _, n := range s.Topology.Nodes {
					if g.Review || s == before {
						if drawn[n.Name] != 1 {
							t.Fatalf("cluster %d: node %s drawn in %d boxes", i, n.Name, drawn[n.Name])
						}
					}
				}
			}
			for _, s := range g.Sessions {
				if g.Box(s.From) == nil || g.Box(s.To) == nil {
					t.Fatalf("cluster %d: session between unknown boxes %+v", i, s)
				}
			}
			for _, m := range g.Missing {
				if g.Box(m.From) == nil || g.Box(m.To) == nil {
					t.Fatalf("cluster %d: missing routes between unknown boxes %+v", i, m)
				}
			}
			svgBoxes(t, svgOf(t, g))
			var page bytes.Buffer
			if err := g.WriteHTML(&page, graph.Page{Title: "t"}); err != nil {
				t.Fatal(err)
			}
			if err := g.WriteDOT(io.Discard); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestFilteredSessionsAreMarked(t *testing.T) {
	// Calico's "no transit" filter on the client peering: confd applies it at both ends, and
	// the reflectors stop passing clients' routes on.
	dir := seedWith(t, "peer.yaml", `peerSelector: "has(route-reflector)"`, "peerSelector: \"has(route-reflector)\"\n  filters: [no-transit]\n---\n"+
		"apiVersion: projectcalico.org/v3\nkind: BGPFilter\nmetadata: {name: no-transit}\nspec:\n  exportV4: [{action: Reject, source: RemotePeers}]")
	g, err := graph.Build(load(t, dir).Analysis, graph.Options{})
	if err != nil {
		t.Fatal(err)
	}
	filtered := 0
	for _, s := range g.Sessions {
		if len(s.Filters) > 0 {
			filtered++
			if !slices.Equal(s.Filters, []string{"no-transit"}) || !slices.Equal(s.Sources, []string{"node-peer-to-rr"}) {
				t.Errorf("filtered session from %v with %v", s.Sources, s.Filters)
			}
		}
	}
	if filtered != 6 {
		t.Errorf("%d filtered session lines, want 6 (3 clients × 2 reflectors)", filtered)
	}
	if !bytes.Contains(svgOf(t, g), []byte(`class="s rr-client filtered"`)) {
		t.Error("no filtered line in the SVG")
	}
	if b := g.Box(graph.NodeID("uqwst")); b.Misses != 2 {
		t.Errorf("uqwst misses %d nodes' routes, want 2 (the other clients)", b.Misses)
	}
}
