//go:build e2e

// Package pictures looks at rrguard's HTML pages as a person would: each page is opened in
// headless Chromium, which takes a screenshot (it must not be blank, and a broken topology
// must show red boxes) and dumps the DOM it built (it must hold every reflector's name and
// every finding, and the page must log nothing to the console).
//
// It needs Debian's chromium package (.ci/run installs it). Without it the tests fail with
// the reason, unless RRGUARD_SKIP_CHROMIUM=1. RRGUARD_UPDATE_PICTURES=1 also copies the
// label-typo screenshot to docs/images/label-typo.png, the picture in the README.
package pictures

import (
	"bytes"
	"context"
	"fmt"
	"image/color"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rrguard/rrguard/internal/scenario"
	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/cluster"
	"github.com/rrguard/rrguard/pkg/graph"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	"golang.org/x/net/html"
)

var chromium string

func TestMain(m *testing.M) {
	path, err := exec.LookPath("chromium")
	if err != nil {
		if os.Getenv("RRGUARD_SKIP_CHROMIUM") == "1" {
			fmt.Println("test/pictures: skipped (RRGUARD_SKIP_CHROMIUM=1): no chromium in PATH")
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "test/pictures: no chromium in PATH: install Debian's chromium package, as .ci/run does (set RRGUARD_SKIP_CHROMIUM=1 to skip these tests)")
		os.Exit(1)
	}
	chromium = path
	os.Exit(m.Run())
}

// window is the size of the browser window, and so of the screenshots.
const windowW, windowH = 1200, 1000

// isolatedFill is the fill of an isolated or cut-off box (svgStyle's #f39a9a).
var isolatedFill = color.RGBA{0xf3, 0x9a, 0x9a, 0xff}

// legendFill is about the area of the legend's sample of that fill (30×14 pixels): a page
// shows a red box only with much more of it.
const legendFill = 30 * 14

type page struct {
	name string
	snap *model.Snapshot
	// red: the picture must show isolated or cut-off boxes.
	red bool
}

func TestPagesInChromium(t *testing.T) {
	pages := []page{
		{name: "seed", snap: loadDir(t, "../../examples/seed")},
		{name: "label-typo", snap: loadDir(t, labelTypo(t)), red: true},
		{name: "mesh-off-mistake", snap: meshOffMistake(t), red: true},
		{name: "5000-nodes", snap: largeCluster(), red: true},
	}
	engine := validate.New(validate.Config{})
	for _, p := range pages {
		t.Run(p.name, func(t *testing.T) {
			g, err := graph.Build(p.snap.Analysis, graph.Options{})
			if err != nil {
				t.Fatal(err)
			}
			findings := engine.Audit(context.Background(), p.snap)
			if p.red && len(findings) == 0 {
				t.Fatal("a broken topology without findings: the page would show no table to check")
			}
			dir := t.TempDir()
			file := filepath.Join(dir, p.name+".html")
			var b bytes.Buffer
			if err := g.WriteHTML(&b, graph.Page{Title: "rrguard audit", Findings: findings}); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(file, b.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}

			shot := filepath.Join(dir, p.name+".png")
			browse(t, dir, "--screenshot="+shot, fmt.Sprintf("--window-size=%d,%d", windowW, windowH), "--hide-scrollbars", "file://"+file)
			colours, red := look(t, shot)
			if colours < 16 {
				t.Errorf("the screenshot has %d colours: blank, or nearly", colours)
			}
			if p.red && red < 10*legendFill {
				t.Errorf("%d pixels of the isolated-box red: the cut-off nodes are not drawn red", red)
			}
			if !p.red && red > 2*legendFill {
				t.Errorf("%d pixels of the isolated-box red in a working topology", red)
			}
			t.Logf("screenshot %dx%d: %d colours, %d red pixels", windowW, windowH, colours, red)
			if p.name == "label-typo" && os.Getenv("RRGUARD_UPDATE_PICTURES") == "1" {
				raw, err := os.ReadFile(shot)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile("../../docs/images/label-typo.png", raw, 0o644); err != nil {
					t.Fatal(err)
				}
			}

			// The DOM, with the moment the load event fired (measured by a copy of the page
			// that records it; the page itself sends nothing anywhere).
			timed := writeTimed(t, dir, p.name, b.String())
			start := time.Now()
			dom, logs := browse(t, dir, "--dump-dom", "--enable-logging=stderr", "--v=0", "file://"+timed)
			wall := time.Since(start)
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, ":CONSOLE") {
					t.Errorf("console output: %s", line)
				}
			}
			text, loadMS := readDOM(t, dom)
			for _, n := range p.snap.Topology.Nodes {
				if n.IsReflector() && !strings.Contains(text, n.Name) {
					t.Errorf("reflector %s is not in the DOM", n.Name)
				}
			}
			for _, f := range findings {
				for _, want := range []string{f.Rule, f.Object.String(), f.Field, f.Message} {
					if !strings.Contains(text, want) {
						t.Errorf("finding %s: %q is not in the DOM", f.Rule, want)
					}
				}
			}
			t.Logf("%d KB of HTML, %d findings; load event after %s ms; chromium ran %v", b.Len()/1024, len(findings), loadMS, wall.Round(time.Millisecond))
		})
	}
}

// writeTimed writes a copy of a page that records, on the body, when its load event fired.
func writeTimed(t testing.TB, dir, name, page string) string {
	t.Helper()
	file := filepath.Join(dir, name+"-timed.html")
	withTimer := strings.Replace(page, "</body>", `<script>addEventListener("load", function () { document.body.setAttribute("data-load-ms", String(performance.now())); });</script></body>`, 1)
	if err := os.WriteFile(file, []byte(withTimer), 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// BenchmarkPageLoad5000 opens the page of the 5,000-node cluster in headless Chromium:
// load-ms is when its load event fired, ns/op the whole run of the browser.
func BenchmarkPageLoad5000(b *testing.B) {
	s := largeCluster()
	g, err := graph.Build(s.Analysis, graph.Options{})
	if err != nil {
		b.Fatal(err)
	}
	var page bytes.Buffer
	if err := g.WriteHTML(&page, graph.Page{Title: "rrguard audit", Findings: validate.New(validate.Config{}).Audit(context.Background(), s)}); err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	timed := writeTimed(b, dir, "5000-nodes", page.String())
	var sum float64
	runs := 0
	for b.Loop() {
		dom, _ := browse(b, dir, "--dump-dom", "file://"+timed)
		_, ms := readDOM(b, dom)
		v, err := strconv.ParseFloat(ms, 64)
		if err != nil {
			b.Fatalf("load time %q: %v", ms, err)
		}
		sum += v
		runs++
	}
	b.ReportMetric(sum/float64(runs), "load-ms")
}

// browse runs headless Chromium with a profile of its own and returns what it printed. The
// whole process group is killed by its id when it ends or after a minute.
func browse(t testing.TB, dir string, args ...string) (stdout, stderr string) {
	t.Helper()
	profile, err := os.MkdirTemp(dir, "profile-")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, chromium, append([]string{"--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
		"--user-data-dir=" + profile}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	err = cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers left behind, if any
	}
	if err != nil {
		t.Fatalf("chromium %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return out.String(), errb.String()
}

// look decodes a screenshot and counts its distinct colours and its pixels of the red of
// isolated boxes.
func look(t *testing.T, file string) (colours, red int) {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if b := img.Bounds(); b.Dx() != windowW || b.Dy() != windowH {
		t.Errorf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), windowW, windowH)
	}
	seen := map[color.RGBA]bool{}
	bounds := img.Bounds()
	for y := bounds.Min.Y; y < bounds.Max.Y; y++ {
		for x := bounds.Min.X; x < bounds.Max.X; x++ {
			c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA)
			seen[c] = true
			if c == isolatedFill {
				red++
			}
		}
	}
	return len(seen), red
}

// readDOM parses Chromium's serialised DOM and returns its text (attributes' values
// included: SVG titles and ids) and the recorded load time.
func readDOM(t testing.TB, dom string) (text, loadMS string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(dom))
	if err != nil {
		t.Fatalf("DOM: %v", err)
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteByte('\n')
		}
		for _, a := range n.Attr {
			if a.Key == "data-load-ms" {
				loadMS = a.Val
			}
		}
		for c := range n.ChildNodes() {
			walk(c)
		}
	}
	walk(doc)
	if loadMS == "" {
		t.Error("the load event did not fire before Chromium dumped the DOM")
	}
	return b.String(), loadMS
}

func loadDir(t *testing.T, dir string) *model.Snapshot {
	t.Helper()
	m, err := cluster.LoadFiles([]string{dir}, cluster.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return model.NewSnapshot(m.State())
}

// labelTypo is the seed with the peer selector's label misspelt: the clients are cut off.
func labelTypo(t *testing.T) string {
	return validatetest.CopyWith(t, "../../examples/seed", map[string][2]string{"peer.yaml": {`peerSelector: "has(route-reflector)"`, `peerSelector: "has(router-reflector)"`}})
}

// meshOffMistake is the seed story's first mistake, as if it had been let through: the mesh
// turned off before any reflector exists.
func meshOffMistake(t *testing.T) *model.Snapshot {
	t.Helper()
	s, err := scenario.Load("../scenarios/seed-tutorial.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var objs []*calico.Object
	for _, u := range s.Initial {
		o, err := calico.Decode(u)
		if err != nil {
			t.Fatal(err)
		}
		objs = append(objs, o)
	}
	meshOff, err := calico.Decode(s.Steps[0].Object)
	if err != nil || meshOff.Config == nil || meshOff.Config.Spec.NodeToNodeMeshEnabled == nil || *meshOff.Config.Spec.NodeToNodeMeshEnabled {
		t.Fatalf("the story's first step is no longer the mesh turned off: %v", err)
	}
	return model.NewSnapshot(calico.NewState(objs).With(meshOff))
}

// largeCluster is 5,000 nodes in four zones with five reflectors each, where the last zone's
// clients' BGPPeer has the label typo: 1,250 clients cut off.
func largeCluster() *model.Snapshot {
	objs := validatetest.Generate(validatetest.Layout{Nodes: 5000, Reflectors: 20, Zones: 4})
	for i, o := range objs {
		if o.Name == "clients-zone-3" {
			objs[i] = validatetest.Peer(o.Name, o.Peer.Spec.NodeSelector, "has(router-reflector) && topology.kubernetes.io/zone == 'zone-3'")
		}
	}
	return model.NewSnapshot(calico.NewState(objs))
}
