//go:build e2e

package bird

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/rrguard/rrguard/test/harness"
)

// confdFiles are the files confd renders for BIRD: bird.cfg and bird6.cfg include the others.
var confdFiles = []string{"bird.cfg", "bird6.cfg", "bird_aggr.cfg", "bird_ipam.cfg", "bird6_aggr.cfg", "bird6_ipam.cfg"}

// krtTunnel matches the statements of bird_ipam.cfg.template's calico_kernel_programming
// filter that set krt_tunnel, an attribute of calico-bird's kernel protocol that Debian's
// BIRD 1.6.8 does not have: it refuses the whole configuration. The filter only decides which
// routes BIRD programs into the node's kernel (and through which tunnel device), never what
// BGP carries, so prepareTemplates disables exactly those statements: each becomes a comment,
// after an empty block where it is the branch of an if/else (the cross-subnet case), so that
// the if/else stays valid. Every other line of every template is Calico's.
var (
	krtTunnel       = regexp.MustCompile(`(?m)^([ \t]*)(krt_tunnel = "[^"]*";)`)
	krtTunnelBranch = regexp.MustCompile(`(?m)(then|else)\n([ \t]*)(krt_tunnel = "[^"]*";)`)
)

// krtTunnelStatements is how many of them the pinned module's template has.
const krtTunnelStatements = 4

// disableKrtTunnel comments out the krt_tunnel statements of bird_ipam.cfg.template.
func disableKrtTunnel(raw []byte) ([]byte, error) {
	if n := len(krtTunnel.FindAll(raw, -1)); n != krtTunnelStatements {
		return nil, fmt.Errorf("%d krt_tunnel statements, want %d: the template changed, look again at what test/bird disables", n, krtTunnelStatements)
	}
	const why = "# test/bird: Debian's BIRD 1.6 has no krt_tunnel: "
	raw = krtTunnelBranch.ReplaceAll(raw, []byte("$1\n$2{ } "+why+"$3"))
	raw = krtTunnel.ReplaceAll(raw, []byte("$1"+why+"$2"))
	return raw, nil
}

// prepareConfd copies the templates of confd's configuration in the pinned Calico module
// (confd/etc/calico/confd, what calico-node's image holds) into dir, krt_tunnel disabled,
// and notes where its conf.d is (renderNode rewrites those per node).
func prepareConfd(root, dir string) error {
	mod, err := harness.ModuleDir(root, harness.CalicoModule)
	if err != nil {
		return fmt.Errorf("find the Calico module: %w", err)
	}
	src := filepath.Join(mod, "confd", "etc", "calico", "confd")
	confdTOMLs = filepath.Join(src, "conf.d")
	templatesDir = filepath.Join(dir, "confd-templates")
	if err := os.MkdirAll(templatesDir, 0o755); err != nil {
		return err
	}
	entries, err := os.ReadDir(filepath.Join(src, "templates"))
	if err != nil {
		return err
	}
	for _, e := range entries {
		raw, err := os.ReadFile(filepath.Join(src, "templates", e.Name()))
		if err != nil {
			return err
		}
		if e.Name() == "bird_ipam.cfg.template" {
			if raw, err = disableKrtTunnel(raw); err != nil {
				return fmt.Errorf("%s: %w", e.Name(), err)
			}
		}
		if err := os.WriteFile(filepath.Join(templatesDir, e.Name()), raw, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// rewriteTOML points a conf.d template resource at out and drops its check_cmd (bird -p on
// the staged file) and reload_cmd (sv hup bird): here BIRD starts once, on the result.
func rewriteTOML(text, out string) (string, error) {
	var b strings.Builder
	dest := false
	for _, line := range strings.Split(text, "\n") {
		key, value, ok := strings.Cut(line, "=")
		switch k := strings.TrimSpace(key); {
		case ok && k == "dest":
			path, err := strconv.Unquote(strings.TrimSpace(value))
			if err != nil {
				return "", fmt.Errorf("dest %s: %w", value, err)
			}
			line = fmt.Sprintf("dest = %q", filepath.Join(out, filepath.Base(path)))
			dest = true
		case ok && (k == "check_cmd" || k == "reload_cmd"):
			continue
		}
		b.WriteString(line)
		b.WriteString("\n")
	}
	if !dest {
		return "", errors.New("no dest")
	}
	return b.String(), nil
}

// rendered is what confd wrote for one node.
type rendered struct {
	dir   string            // bird.cfg and its includes
	files map[string]string // file name → contents
	log   string            // confd's output
}

// renderMu serialises the topologies in the API server: confd reads the whole cluster.
var renderMu sync.Mutex

// confdParallel bounds the confd processes of one topology (each lists the cluster and
// renders six templates, mostly CPU).
const confdParallel = 4

// The kinds reset deletes between topologies (Secrets only those labelled testLabel).
var resetKinds = []schema.GroupVersionKind{
	{Group: "crd.projectcalico.org", Version: "v1", Kind: "BGPPeer"},
	{Group: "crd.projectcalico.org", Version: "v1", Kind: "BGPFilter"},
	{Group: "crd.projectcalico.org", Version: "v1", Kind: "BGPConfiguration"},
	{Group: "crd.projectcalico.org", Version: "v1", Kind: "BlockAffinity"},
	{Group: "crd.projectcalico.org", Version: "v1", Kind: "IPPool"},
	{Version: "v1", Kind: "Node"},
	{Version: "v1", Kind: "Secret"},
}

func reset(ctx context.Context) error {
	only := []client.DeleteAllOfOption{}
	for _, gvk := range resetKinds {
		o := &unstructured.Unstructured{}
		o.SetGroupVersionKind(gvk)
		opts := only
		if gvk.Kind == "Secret" {
			opts = []client.DeleteAllOfOption{client.InNamespace("kube-system"), client.MatchingLabels{testLabel: "true"}}
		}
		if err := h.Client.DeleteAllOf(ctx, o, opts...); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete all %s: %w", gvk.Kind, err)
		}
	}
	for _, gvk := range resetKinds {
		for {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
			opts := []client.ListOption{}
			if gvk.Kind == "Secret" {
				opts = []client.ListOption{client.InNamespace("kube-system"), client.MatchingLabels{testLabel: "true"}}
			}
			if err := h.Client.List(ctx, list, opts...); err != nil {
				return fmt.Errorf("list %s: %w", gvk.Kind, err)
			}
			if len(list.Items) == 0 {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("reset: %d %s still present: %w", len(list.Items), gvk.Kind, ctx.Err())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	return nil
}

// render writes the topology's objects into the API server, alone, and runs confd once for
// every node as calico-node does; it returns each node's files.
func render(t *testing.T, topo topology, objs []*unstructured.Unstructured, dir string) map[string]*rendered {
	t.Helper()
	renderMu.Lock()
	defer renderMu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := reset(ctx); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		o := o.DeepCopy()
		if err := h.Client.Create(ctx, o); err != nil {
			t.Fatalf("create %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	start := time.Now()
	out := map[string]*rendered{}
	errs := make([]error, len(topo.nodes))
	var mu sync.Mutex
	var wg sync.WaitGroup
	sem := make(chan struct{}, confdParallel)
	for i, n := range topo.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := renderNode(ctx, n, filepath.Join(dir, "confd", n.name))
			mu.Lock()
			defer mu.Unlock()
			out[n.name], errs[i] = r, err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("confd for %s: %v", topo.nodes[i].name, err)
		}
	}
	t.Logf("confd rendered %d nodes in %s", len(topo.nodes), time.Since(start).Round(time.Millisecond))
	return out
}

// confdEnvDrop are the variables of the test's environment that confd must not see: it
// talks to this control plane only, in Kubernetes-datastore mode, without Typha.
var confdEnvDrop = []string{"KUBECONFIG=", "DATASTORE_TYPE=", "CALICO_", "FELIX_", "CONFD_", "TYPHA", "ETCD_", "K8S_", "NODENAME=", "HOSTNAME=", "NAMESPACE=", "BGP_", "HOME="}

// renderNode runs `confd -onetime -confdir DIR` as calico-node runs confd for node n in
// Kubernetes-datastore mode (NODENAME, DATASTORE_TYPE=kubernetes, KUBECONFIG), with the
// conf.d of the pinned module pointed at dir/out.
func renderNode(ctx context.Context, n tnode, dir string) (*rendered, error) {
	confdir, outDir, epDir := filepath.Join(dir, "confdir"), filepath.Join(dir, "out"), filepath.Join(dir, "endpoint-status")
	for _, d := range []string{filepath.Join(confdir, "conf.d"), outDir, epDir} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	if err := os.Symlink(templatesDir, filepath.Join(confdir, "templates")); err != nil {
		return nil, err
	}
	tomls, err := os.ReadDir(confdTOMLs)
	if err != nil {
		return nil, err
	}
	for _, e := range tomls {
		raw, err := os.ReadFile(filepath.Join(confdTOMLs, e.Name()))
		if err != nil {
			return nil, err
		}
		text, err := rewriteTOML(string(raw), outDir)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", e.Name(), err)
		}
		if err := os.WriteFile(filepath.Join(confdir, "conf.d", e.Name()), []byte(text), 0o644); err != nil {
			return nil, err
		}
	}

	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	cmd := exec.Command(confdBin, "-onetime", "-confdir", confdir)
	for _, kv := range os.Environ() {
		if !hasAnyPrefix(kv, confdEnvDrop) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "NODENAME="+n.name, "DATASTORE_TYPE=kubernetes", "KUBECONFIG="+h.Kubeconfig,
		"HOME="+dir, "CALICO_ENDPOINT_STATUS_PATH_PREFIX="+epDir)
	if !n.v4 {
		// BIRD's router ID is 4 octets; calico-node takes the node's IPv4 address, and
		// Calico's IPv6-only installations set CALICO_ROUTER_ID=hash instead.
		cmd.Env = append(cmd.Env, "CALICO_ROUTER_ID=hash")
	}
	var logs harness.LogBuffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := live.startProc(cmd); err != nil {
		return nil, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Kill()
		<-done
		err = fmt.Errorf("no result after a minute: %w", ctx.Err())
	}
	live.dropProc(cmd.Process)
	if err != nil {
		return nil, fmt.Errorf("%v\n%s", err, logs.String())
	}
	r := &rendered{dir: outDir, files: map[string]string{}, log: logs.String()}
	for _, f := range confdFiles {
		raw, err := os.ReadFile(filepath.Join(outDir, f))
		if err != nil {
			return nil, fmt.Errorf("confd exited 0 but wrote no %s: %v\n%s", f, err, logs.String())
		}
		r.files[f] = string(raw)
	}
	return r, nil
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// staticRoute matches a route of bird_aggr.cfg's `protocol static`: a block this node holds.
var staticRoute = regexp.MustCompile(`(?m)^\s*route (\S+) blackhole;`)

// originated are the blocks confd gave the node's BIRD to originate (its blackhole routes).
func (r *rendered) originated(ipv6 bool) []string {
	file := "bird_aggr.cfg"
	if ipv6 {
		file = "bird6_aggr.cfg"
	}
	var out []string
	for _, m := range staticRoute.FindAllStringSubmatch(r.files[file], -1) {
		out = append(out, m[1])
	}
	return out
}

// compact is a rendered file without its comment lines and blank lines, for failure output.
func compact(text string) string {
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if trimmed := strings.TrimSpace(line); trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		b.WriteString(line)
		b.WriteString("\n")
	}
	return b.String()
}
