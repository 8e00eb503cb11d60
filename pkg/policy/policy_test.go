package policy

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rrguard/rrguard/pkg/policy/policytest"
)

func TestShippedPolicies(t *testing.T) {
	var out bytes.Buffer
	sum, err := RunTests(context.Background(), nil, &out, false)
	if err != nil {
		t.Fatal(err)
	}
	if !sum.OK() || sum.Passed < 20 {
		t.Errorf("%+v\n%s", sum, out.String())
	}
	set, err := Load(Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"cluster-id-scheme", "private-asn", "reflector-per-zone"} {
		p := set.Policy(name)
		if p == nil || !p.Shipped || p.Default != "off" || p.Title == "" || p.Description == "" {
			t.Errorf("%s: %+v", name, p)
		}
	}
}

const okPolicy = "package rrguard.policies[\"ok\"]\n\nimport rego.v1\n\ndeny contains \"no\" if input.object.metadata.name == \"no\"\n"

func TestLoadRefusesUnsafePolicies(t *testing.T) {
	cases := map[string]struct {
		src  string
		want []string
	}{
		"http.send": {"package rrguard.policies.net\n\nimport rego.v1\n\ndeny contains x if {\n\tx := http.send({\"method\": \"get\", \"url\": \"http://example.com\"})\n}\n",
			[]string{"p.rego:6: http.send is not allowed in rrguard policies", "network"}},
		"net.lookup_ip_addr": {"package rrguard.policies.dns\n\nimport rego.v1\n\ndeny contains \"x\" if net.lookup_ip_addr(\"example.com\")\n", []string{"p.rego:5: net.lookup_ip_addr is not allowed"}},
		"opa.runtime":        {"package rrguard.policies.rt\n\nimport rego.v1\n\ndeny contains x if x := opa.runtime().env.HOME\n", []string{"opa.runtime is not allowed"}},
		"time.now_ns":        {"package rrguard.policies.clock\n\nimport rego.v1\n\ndeny contains \"late\" if time.now_ns() > 0\n", []string{"time.now_ns is not allowed"}},
		"rand":               {"package rrguard.policies.dice\n\nimport rego.v1\n\ndeny contains \"x\" if rand.intn(\"x\", 2) == 1\n", []string{"rand.intn is not allowed"}},
		"cidr_expand":        {"package rrguard.policies.big\n\nimport rego.v1\n\ndeny contains \"x\" if count(net.cidr_expand(\"10.0.0.0/8\")) > 0\n", []string{"net.cidr_expand is not allowed"}},
		"syntax":             {"package rrguard.policies.syntax\n\ndeny contains if {\n", []string{"p.rego:3"}},
		"deny not a set":     {"package rrguard.policies.single\n\nimport rego.v1\n\ndeny := \"x\"\n", []string{"p.rego:5", "deny must be a set"}},
		"no rules":           {"package rrguard.policies.empty\n\nimport rego.v1\n\nx := 1\n", []string{"has no deny or warn rule"}},
		"nested":             {"package rrguard.policies.a.b\n\nimport rego.v1\n\ndeny contains \"x\" if false\n", []string{"p.rego:1", "exactly rrguard.policies.<name>"}},
		"bad name":           {"package rrguard.policies[\"Bad Name\"]\n\nimport rego.v1\n\ndeny contains \"x\" if false\n", []string{"policy name \"Bad Name\""}},
		"reserved data":      {"package rrguard.cluster\n\nimport rego.v1\n\nnodes := {}\n", []string{"filled in by rrguard"}},
		"v0 syntax":          {"package rrguard.policies.old\n\ndeny[msg] { msg := \"x\" }\n", []string{"p.rego:3"}},
		"shipped name":       {"package rrguard.policies[\"private-asn\"]\n\nimport rego.v1\n\ndeny contains \"x\" if false\n", []string{"p.rego:1", "shipped with rrguard"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			dir := policytest.Dir(t, map[string]string{"p.rego": c.src})
			_, err := Load(Options{Dirs: []string{dir}})
			var le *LoadError
			if !errors.As(err, &le) {
				t.Fatalf("err %v, want a LoadError", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not say %q:\n%v", w, err)
				}
			}
			for _, p := range le.Problems {
				if p.File == "" {
					t.Errorf("problem without a file: %+v", p)
				}
			}
		})
	}
}

func TestPureNetBuiltinsAllowed(t *testing.T) {
	dir := policytest.Dir(t, map[string]string{"p.rego": "package rrguard.policies.cidr\n\nimport rego.v1\n\ndeny contains \"x\" if net.cidr_contains(\"244.0.0.0/8\", input.object.spec.bgp.routeReflectorClusterID)\n"})
	if _, err := Load(Options{Dirs: []string{dir}}); err != nil {
		t.Fatal(err)
	}
}

func TestResults(t *testing.T) {
	dir := policytest.Dir(t, map[string]string{
		"a.rego": `package rrguard.policies.a

import rego.v1

deny contains "plain" if input.operation == "CREATE"

deny contains {"msg": "with field", "field": "spec.peerSelector"} if input.operation == "CREATE"

warn contains {"msg": sprintf("%s", [data.rrguard.params.a.word])} if input.operation == "CREATE"
`,
		"b.rego": `package rrguard.policies.b

import rego.v1

deny contains {"message": "wrong key"} if true
`,
		"params.yaml": "a: {word: hello}\n",
	})
	set, err := Load(Options{Dirs: []string{dir}, NoShipped: true})
	if err != nil {
		t.Fatal(err)
	}
	b := set.Bind(map[string]any{}, nil)
	got := b.Eval(context.Background(), &Input{Operation: "CREATE", Kind: "BGPPeer", Object: map[string]any{"metadata": map[string]any{"name": "x"}}})
	want := []Result{
		{Policy: "a", Kind: Deny, Message: "plain"},
		{Policy: "a", Kind: Deny, Message: "with field", Field: "spec.peerSelector"},
		{Policy: "a", Kind: Warn, Message: "hello"},
		{Policy: "b", Kind: Error},
	}
	if len(got) != len(want) {
		t.Fatalf("got %+v", got)
	}
	for i := range want {
		if want[i].Kind == Error {
			if got[i].Kind != Error || !strings.Contains(got[i].Message, `needs a string "msg"`) {
				t.Errorf("got %+v, want an error naming msg", got[i])
			}
			continue
		}
		if got[i] != want[i] {
			t.Errorf("got %+v, want %+v", got[i], want[i])
		}
	}
	// Only the enabled policies are prepared.
	only := set.Bind(map[string]any{}, func(p *Policy) bool { return p.Name == "a" })
	if ps := only.Policies(); len(ps) != 1 || ps[0].Name != "a" {
		t.Errorf("bound %v", ps)
	}
}

func TestParamsConflict(t *testing.T) {
	dir := policytest.Dir(t, map[string]string{"params.yaml": "a: {x: 1}\n", "more.params.json": `{"a": {"x": 2}}`, "ok.rego": okPolicy})
	if _, err := Load(Options{Dirs: []string{dir}}); err == nil || !strings.Contains(err.Error(), "already given") {
		t.Errorf("err %v", err)
	}
}

func TestMissingDirectory(t *testing.T) {
	_, err := Load(Options{Dirs: []string{filepath.Join(t.TempDir(), "nope")}})
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("err %v", err)
	}
}

func TestRunTestsReportsFailures(t *testing.T) {
	dir := policytest.Dir(t, map[string]string{
		"ok.rego":      okPolicy,
		"ok_test.rego": "package rrguard.policies[\"ok\"]\n\nimport rego.v1\n\ntest_no if \"no\" in deny with input as {\"object\": {\"metadata\": {\"name\": \"no\"}}}\n\ntest_wrong if \"no\" in deny with input as {\"object\": {\"metadata\": {\"name\": \"yes\"}}}\n",
	})
	var out bytes.Buffer
	sum, err := RunTests(context.Background(), []string{dir}, &out, false)
	if err != nil {
		t.Fatal(err)
	}
	if sum.Passed != 1 || sum.Failed != 1 || sum.OK() {
		t.Errorf("%+v", sum)
	}
	if !strings.Contains(out.String(), "test_wrong") || !strings.Contains(out.String(), "FAIL") {
		t.Errorf("report:\n%s", out.String())
	}
}

// configMap lays out dir as the kubelet mounts a ConfigMap: files are links into ..data, a
// link to a timestamped directory that an update replaces atomically.
type configMap struct {
	t   testing.TB
	dir string
	gen int
}

func (c *configMap) update(files map[string]string) {
	c.t.Helper()
	c.gen++
	ts := filepath.Join(c.dir, "..2026_11_26_0"+string(rune('0'+c.gen)))
	if err := os.Mkdir(ts, 0o755); err != nil {
		c.t.Fatal(err)
	}
	policytest.Write(c.t, ts, files)
	tmp := filepath.Join(c.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(ts), tmp); err != nil {
		c.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(c.dir, "..data")); err != nil {
		c.t.Fatal(err)
	}
	for name := range files {
		link := filepath.Join(c.dir, name)
		if _, err := os.Lstat(link); err == nil {
			continue
		}
		if err := os.Symlink(filepath.Join("..data", name), link); err != nil {
			c.t.Fatal(err)
		}
	}
}

func TestWatcherFollowsConfigMapUpdates(t *testing.T) {
	cm := &configMap{t: t, dir: t.TempDir()}
	cm.update(map[string]string{"p.rego": okPolicy})
	reloads := make(chan Reload, 10)
	w, err := NewWatcher(Options{Dirs: []string{cm.dir}}, func(r Reload) { reloads <- r })
	if err != nil {
		t.Fatal(err)
	}
	w.Poll = time.Hour // notifications only
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error)
	go func() { done <- w.Start(ctx) }()
	first := w.Current()
	if first.Policy("ok") == nil {
		t.Fatal("ok not loaded")
	}
	wait := func() Reload {
		t.Helper()
		select {
		case r := <-reloads:
			return r
		case <-time.After(10 * time.Second):
			t.Fatal("no reload")
		}
		return Reload{}
	}
	time.Sleep(100 * time.Millisecond) // let the watch start
	cm.update(map[string]string{"p.rego": strings.ReplaceAll(okPolicy, `"ok"`, `"renamed"`)})
	if r := wait(); r.Err != nil || r.Set.Policy("renamed") == nil || w.Current() != r.Set {
		t.Fatalf("reload %+v", r)
	}
	good := w.Current()
	cm.update(map[string]string{"p.rego": "package rrguard.policies.broken\n\ndeny contains if {\n"})
	r := wait()
	if r.Err == nil || !strings.Contains(r.Err.Error(), "p.rego:3") {
		t.Errorf("broken set: %v", r.Err)
	}
	if w.Current() != good || r.Set != good {
		t.Error("a broken set replaced the last good one")
	}
	// Re-reading the same broken files neither reloads nor reports again.
	if tried, _ := w.Reload(); tried {
		t.Error("unchanged files were compiled again")
	}
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// BenchmarkLoad is a reload: read, parse and compile ten policies (seven custom, the three
// shipped).
func BenchmarkLoad(b *testing.B) {
	dir := policytest.Dir(b, policytest.Custom())
	opts := Options{Dirs: []string{dir}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Load(opts); err != nil {
			b.Fatal(err)
		}
	}
}

func TestWatcherReportsAVanishedDirectoryOnce(t *testing.T) {
	dir := policytest.Dir(t, map[string]string{"p.rego": okPolicy})
	var errs int
	w, err := NewWatcher(Options{Dirs: []string{dir}}, func(r Reload) {
		if r.Err != nil {
			errs++
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	good := w.Current()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		_, _ = w.Reload()
	}
	if errs != 1 || w.Current() != good {
		t.Errorf("%d error reports (want 1); set kept: %v", errs, w.Current() == good)
	}
}
