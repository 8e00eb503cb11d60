// Package harness runs a real test control plane for rrguard's live tests: etcd and
// kube-apiserver (built by `make controlplane` into bin/) started through controller-runtime's
// envtest, the Calico CRDs of both API groups installed (from the pinned Calico module), a
// kubeconfig for kubectl and calicoctl, and helpers to run those tools the way a user does.
// It is also where the live tests' shared helpers live: free ports, serving certificates
// (certs.go), AdmissionReviews to post (review.go), waiting for the asynchronous (wait.go).
//
// A webhook test registers its webhook configurations in Options.Webhooks (envtest's
// WebhookInstallOptions: Paths of manifests, or ValidatingWebhooks/MutatingWebhooks objects;
// service references are rewritten to https://127.0.0.1:<port>/<path> with envtest's CA), then
// serves the webhook on Harness.Env.WebhookInstallOptions' LocalServingHost, LocalServingPort and
// LocalServingCertDir before its tests send requests (see test/harnesscheck's TestWebhookPath).
package harness

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rrguard/rrguard/test/harness/scratch"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Binaries of the test control plane, looked up in Options.BinDir.
var Binaries = []string{"kube-apiserver", "etcd", "kubectl", "calicoctl"}

// CalicoLabelsAnnotation holds a node's Calico-only labels as a JSON map.
const CalicoLabelsAnnotation = "projectcalico.org/labels"

// Options configures Start. The zero value finds everything from the working directory.
type Options struct {
	// RootDir is the repository root; default: the nearest parent directory of the working
	// directory whose go.mod declares module github.com/rrguard/rrguard.
	RootDir string
	// BinDir holds kube-apiserver, etcd, kubectl and calicoctl; default $KUBEBUILDER_ASSETS,
	// else RootDir/bin.
	BinDir string
	// Webhooks are installed into the API server at start (see envtest.WebhookInstallOptions):
	// envtest fills in LocalServingHost, LocalServingPort, LocalServingCertDir and
	// LocalServingCAData, and points every webhook's clientConfig at https://host:port.
	Webhooks envtest.WebhookInstallOptions
	// CRDPaths are more CRD manifests to install at start besides the Calico CRDs: files or
	// directories, relative to RootDir (e.g. config/crd/openreports, the audit's report kind).
	CRDPaths []string
	// Namespaces are created at start (rrguard-system, where rrguard elects its leader).
	Namespaces []string
	// APIServerArgs are extra kube-apiserver flags (name without "--" to values).
	APIServerArgs map[string][]string
	// Output receives etcd's and kube-apiserver's logs; default discarded.
	Output io.Writer
	// CalicoAPIServer serves projectcalico.org/v3 through calico-apiserver (bin/calico-apiserver),
	// registered as an aggregated API server, instead of as CRDs: only the crd.projectcalico.org
	// CRDs are installed (all of them), where it stores what it serves. Linux and root only:
	// it runs in a network namespace (see calicoapiserver.go).
	CalicoAPIServer bool
}

// Harness is a running control plane.
type Harness struct {
	// Env is the envtest environment; Env.WebhookInstallOptions carries the webhook serving
	// host, port, certificate directory and CA once started.
	Env *envtest.Environment
	// Config is an admin (system:masters) REST config.
	Config *rest.Config
	// Client is an admin client; it reads and writes unstructured objects of any kind.
	Client client.Client
	// Kubeconfig is the path of a kubeconfig file for the admin user (for kubectl, calicoctl).
	Kubeconfig string
	RootDir    string
	BinDir     string
	// CalicoAPIServer is the running calico-apiserver, with Options.CalicoAPIServer.
	CalicoAPIServer *CalicoAPIServer
	// ResetGuard, when set, wraps Reset's deletions: a webhook test uses it to take its
	// webhook configurations out of the way, so that cleaning up between tests is never
	// judged by the webhook under test.
	ResetGuard func(ctx context.Context, reset func() error) error

	workDir string
	// mu is held while the control plane starts and stops.
	mu               sync.Mutex
	started, stopped bool
	stopErr          error
}

// ErrMissingBinaries is wrapped by Start's error when bin/ is incomplete.
var ErrMissingBinaries = errors.New("test control plane binaries missing: run `make controlplane` (hack/controlplane/build.sh)")

// ErrUntaggedLiveTest is Start's error in a test binary built without -tags e2e.
var ErrUntaggedLiveTest = errors.New("a live test built without -tags e2e: give every test file of its package the line //go:build e2e (make e2e and make test build with the tag; make unit runs no live test)")

// Start checks the binaries, starts etcd and kube-apiserver, installs the Calico CRDs
// (crd.projectcalico.org/v1 and projectcalico.org/v3, see CalicoCRDs) and writes a kubeconfig.
// The control plane dies with the test process, however it ends (see lifetime_linux.go);
// its files are in one directory (WorkDir) that Stop removes, and that the next Start
// removes if the process was killed first (see package scratch).
func Start(opts Options) (h *Harness, err error) {
	if opts.RootDir == "" {
		if opts.RootDir, err = FindRoot(); err != nil {
			return nil, err
		}
	}
	if opts.BinDir == "" {
		opts.BinDir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if opts.BinDir == "" {
		opts.BinDir = filepath.Join(opts.RootDir, "bin")
	}
	if err := checkBinaries(opts.BinDir); err != nil {
		return nil, err
	}
	if testing.Testing() && !liveBuild {
		return nil, ErrUntaggedLiveTest
	}
	calicoCRDs := CalicoCRDs
	if opts.CalicoAPIServer {
		calicoCRDs = CalicoAPIServerCRDs
	}
	crds, err := calicoCRDs(opts.RootDir)
	if err != nil {
		return nil, fmt.Errorf("find the Calico CRDs: %w", err)
	}

	// What runs of the harness (or of other test beds) killed before they could clean up left.
	if swept, err := scratch.Sweep(); err != nil {
		fmt.Fprintf(os.Stderr, "harness: sweeping the directories of dead runs: %v\n", err)
	} else if len(swept) > 0 {
		fmt.Fprintf(os.Stderr, "harness: removed %d directories of dead runs: %s\n", len(swept), strings.Join(swept, " "))
	}
	workDir, err := scratch.Dir("rrguard-harness-")
	if err != nil {
		return nil, err
	}
	h = &Harness{RootDir: opts.RootDir, BinDir: opts.BinDir, workDir: workDir}
	track(h)
	defer func() {
		if err != nil {
			_ = h.Stop()
		}
	}()
	if err := endWithParent(); err != nil {
		return h, fmt.Errorf("tie the test process to its parent: %w", err)
	}
	// etcd and kube-apiserver run under links that make them die with the test process, and
	// keep their files in workDir (see lifetime_linux.go).
	links := filepath.Join(workDir, "bin")
	apiDir := filepath.Join(workDir, "kube-apiserver")
	for _, d := range []string{links, apiDir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return h, err
		}
	}
	etcdPath, err := supervised(links, filepath.Join(opts.BinDir, "etcd"))
	if err != nil {
		return h, err
	}
	apiPath, err := supervised(links, filepath.Join(opts.BinDir, "kube-apiserver"))
	if err != nil {
		return h, err
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory: opts.BinDir,
		CRDs:                  crds,
		ErrorIfCRDPathMissing: true,
		WebhookInstallOptions: opts.Webhooks,
	}
	h.Env = env
	for _, p := range opts.CRDPaths {
		env.CRDDirectoryPaths = append(env.CRDDirectoryPaths, filepath.Join(opts.RootDir, p))
	}
	if os.Getenv("KUBEBUILDER_CONTROLPLANE_START_TIMEOUT") == "" {
		// envtest's 20s default is short on a busy 2-core machine.
		env.ControlPlaneStartTimeout = 2 * time.Minute
	}
	env.ControlPlane.Etcd = &envtest.Etcd{Out: opts.Output, Err: opts.Output, DataDir: filepath.Join(workDir, "etcd")}
	api := env.ControlPlane.GetAPIServer()
	api.Out, api.Err, api.CertDir = opts.Output, opts.Output, apiDir
	// Paths set explicitly so that TEST_ASSET_* / KUBEBUILDER_ASSETS cannot mix versions.
	api.Path = apiPath
	env.ControlPlane.Etcd.Path = etcdPath
	env.ControlPlane.KubectlPath = filepath.Join(opts.BinDir, "kubectl")
	args := api.Configure()
	// The API server advertises an address to the cluster; on a host whose only interface is
	// loopback it finds none, and kube-apiserver refuses 127.0.0.1 as advertise address unless
	// the endpoint reconciler (which would publish it in the kubernetes Service) is off.
	args.Set("advertise-address", "127.0.0.1")
	args.Set("endpoint-reconciler-type", "none")
	if opts.CalicoAPIServer {
		frontProxy, err := frontProxyArgs(filepath.Join(workDir, "front-proxy"))
		if err != nil {
			return h, err
		}
		for name, values := range frontProxy {
			args.Set(name, values...)
		}
	}
	for name, values := range opts.APIServerArgs {
		args.Set(name, values...)
	}

	h.mu.Lock()
	h.Config, err = env.Start()
	h.started = true
	h.mu.Unlock()
	// envtest makes the webhooks' serving certificates a directory of their own.
	if dir := env.WebhookInstallOptions.LocalServingCertDir; dir != "" {
		if adoptErr := scratch.Adopt(workDir, dir); adoptErr != nil && err == nil {
			err = adoptErr
		}
	}
	if err != nil {
		return h, fmt.Errorf("start control plane (binaries in %s): %w", opts.BinDir, err)
	}
	if h.Client, err = client.New(h.Config, client.Options{}); err != nil {
		return h, err
	}
	h.Kubeconfig = filepath.Join(workDir, "kubeconfig")
	if err := os.WriteFile(h.Kubeconfig, env.KubeConfig, 0o600); err != nil {
		return h, err
	}
	for _, ns := range opts.Namespaces {
		if err := h.Client.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
			return h, fmt.Errorf("create namespace %s: %w", ns, err)
		}
	}
	if opts.CalicoAPIServer {
		if err := h.startCalicoAPIServer(context.Background()); err != nil {
			return h, err
		}
	}
	return h, nil
}

// WorkDir is the directory of the harness's files: etcd's data, the API server's certificates,
// the kubeconfig, WriteFile's files, Build's binaries.
func (h *Harness) WorkDir() string { return h.workDir }

// Build builds the command package pkg of the repository (e.g. "./cmd/rrguard") into the
// harness's directory and returns the binary's path (see the function Build).
func (h *Harness) Build(pkg string) (string, error) {
	return Build(h.RootDir, pkg, h.workDir)
}

// Stop stops the control plane and removes its files; calls after the first return its error.
func (h *Harness) Stop() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.stopped {
		h.stopped = true
		h.stopErr = h.stop()
		untrack(h)
	}
	return h.stopErr
}

func (h *Harness) stop() error {
	var err error
	if h.CalicoAPIServer != nil {
		err = h.CalicoAPIServer.stop()
	}
	if h.Env != nil && h.started {
		err = errors.Join(err, h.Env.Stop())
	}
	if h.workDir != "" {
		err = errors.Join(err, os.RemoveAll(h.workDir))
	}
	return err
}

// running are the harnesses of the process that are not stopped, for stopOnSignal.
var running struct {
	sync.Mutex
	harnesses map[*Harness]bool
	watching  bool
}

func track(h *Harness) {
	running.Lock()
	defer running.Unlock()
	if running.harnesses == nil {
		running.harnesses = map[*Harness]bool{}
	}
	running.harnesses[h] = true
	if !running.watching {
		running.watching = true
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
		go stopOnSignal(sigs)
	}
}

func untrack(h *Harness) {
	running.Lock()
	delete(running.harnesses, h)
	running.Unlock()
}

// stopOnSignal stops every running harness when the test process is interrupted (Ctrl-C
// sends SIGINT to the whole process group, which the control plane is not in) or told to end
// (SIGTERM, also when `go test` itself ends: see endWithParent), then ends the process as the
// signal would have. A harness still starting is not waited for: its files are removed, and
// its processes die with the test process.
func stopOnSignal(sigs <-chan os.Signal) {
	sig := <-sigs
	// When `go test` was killed, stderr is a pipe nobody reads: Go ends a process that writes
	// to such a pipe on fd 1 or 2 with SIGPIPE, unless SIGPIPE is ignored, and the control
	// plane's directories would stay behind.
	signal.Ignore(syscall.SIGPIPE)
	fmt.Fprintf(os.Stderr, "harness: %v: stopping the control plane\n", sig)
	running.Lock()
	var hs []*Harness
	for h := range running.harnesses {
		hs = append(hs, h)
	}
	running.Unlock()
	for _, h := range hs {
		if h.mu.TryLock() {
			h.mu.Unlock()
			if err := h.Stop(); err != nil {
				fmt.Fprintf(os.Stderr, "harness: stop the control plane: %v\n", err)
			}
		} else {
			_ = os.RemoveAll(h.workDir)
		}
	}
	os.Exit(1)
}

// Main is the body of a live test package's TestMain: it starts the control plane into *h,
// runs the tests and stops it. When the control plane cannot start (for instance bin/ is
// incomplete) it prints why and fails the package: live tests never skip.
func Main(m *testing.M, opts Options, h **Harness) int {
	started, err := Start(opts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	*h = started
	code := m.Run()
	if err := started.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "stop control plane: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// FindRoot returns the repository root: the nearest parent of the working directory whose
// go.mod declares module github.com/rrguard/rrguard.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if raw, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil &&
			bytes.HasPrefix(bytes.TrimSpace(raw), []byte("module github.com/rrguard/rrguard\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("repository root not found: no go.mod of module github.com/rrguard/rrguard above the working directory")
		}
		dir = parent
	}
}

func checkBinaries(dir string) error {
	var missing []string
	for _, b := range Binaries {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: %s not in %s", ErrMissingBinaries, strings.Join(missing, ", "), dir)
	}
	return nil
}

// Output is what a command printed and how it ended.
type Output struct {
	Stdout, Stderr string
	// Err is nil when the command exited 0; otherwise it wraps the *exec.ExitError.
	Err error
}

// LogBuffer collects the output of a process a test runs (its stdout and stderr, written
// concurrently) for the test's failure messages.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Kubectl runs bin/kubectl as the admin user with stdin (may be nil).
func (h *Harness) Kubectl(ctx context.Context, stdin []byte, args ...string) Output {
	return h.run(ctx, "kubectl", stdin, nil, append([]string{"--kubeconfig", h.Kubeconfig, "--cache-dir", filepath.Join(h.workDir, "kube-cache")}, args...)...)
}

// KubectlText runs bin/kubectl as the admin user with stdin ("": none) for at most a minute,
// and returns what it printed (stdout, then stderr, trimmed) and whether it exited 0: the form
// a test compares with what a user sees.
func (h *Harness) KubectlText(stdin string, args ...string) (string, bool) {
	var in []byte
	if stdin != "" {
		in = []byte(stdin)
	}
	out := h.Kubectl(context.Background(), in, args...)
	return strings.TrimSpace(out.Stdout + "\n" + out.Stderr), out.Err == nil
}

// Calicoctl runs bin/calicoctl against the API server in Kubernetes-datastore mode
// (DATASTORE_TYPE=kubernetes, KUBECONFIG) with stdin (may be nil).
func (h *Harness) Calicoctl(ctx context.Context, stdin []byte, args ...string) Output {
	return h.run(ctx, "calicoctl", stdin, []string{"DATASTORE_TYPE=kubernetes", "KUBECONFIG=" + h.Kubeconfig}, args...)
}

func (h *Harness) run(ctx context.Context, name string, stdin []byte, env []string, args ...string) Output {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, time.Minute)
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, filepath.Join(h.BinDir, name), args...)
	// The tools talk to this control plane only: no kubeconfig, Calico datastore or etcd
	// settings of the caller's environment, and a HOME of their own for their caches.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUBECONFIG=") && !strings.HasPrefix(kv, "DATASTORE_TYPE=") &&
			!strings.HasPrefix(kv, "CALICO_") && !strings.HasPrefix(kv, "ETCD_") && !strings.HasPrefix(kv, "HOME=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(append(cmd.Env, "HOME="+h.workDir), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	out := Output{}
	if err := cmd.Run(); err != nil {
		out.Err = fmt.Errorf("%s %s: %w", name, strings.Join(args, " "), err)
	}
	out.Stdout, out.Stderr = stdout.String(), stderr.String()
	return out
}

// WriteFile writes data into the harness's scratch directory and returns its path.
func (h *Harness) WriteFile(name string, data []byte) (string, error) {
	path := filepath.Join(h.workDir, name)
	return path, os.WriteFile(path, data, 0o600)
}

// Create creates objects directly (no kubectl): each one, then its status through the status
// subresource when it has one (Node conditions, for instance), since a create ignores status.
func (h *Harness) Create(ctx context.Context, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		obj := o.DeepCopy()
		status, hasStatus := obj.Object["status"]
		if err := h.Client.Create(ctx, obj); err != nil {
			return fmt.Errorf("create %s %q: %w", obj.GetKind(), obj.GetName(), err)
		}
		if hasStatus {
			obj.Object["status"] = status
			if err := h.Client.Status().Update(ctx, obj); err != nil {
				return fmt.Errorf("update status of %s %q: %w", obj.GetKind(), obj.GetName(), err)
			}
		}
	}
	return nil
}

// ResetKinds are what Reset deletes: every Node and every Calico object that decides routes,
// of both groups.
var ResetKinds = []schema.GroupVersionKind{
	{Version: "v1", Kind: "Node"},
	{Group: "crd.projectcalico.org", Version: "v1", Kind: "BGPPeer"},
	{Group: "crd.projectcalico.org", Version: "v1", Kind: "BGPConfiguration"},
	{Group: "crd.projectcalico.org", Version: "v1", Kind: "BGPFilter"},
	{Group: "crd.projectcalico.org", Version: "v1", Kind: "IPPool"},
	{Group: "crd.projectcalico.org", Version: "v1", Kind: "BlockAffinity"},
	{Group: "projectcalico.org", Version: "v3", Kind: "BGPPeer"},
	{Group: "projectcalico.org", Version: "v3", Kind: "BGPConfiguration"},
	{Group: "projectcalico.org", Version: "v3", Kind: "BGPFilter"},
	{Group: "projectcalico.org", Version: "v3", Kind: "IPPool"},
	{Group: "projectcalico.org", Version: "v3", Kind: "BlockAffinity"},
}

// Reset deletes every object of ResetKinds and waits until they are gone, so that the next
// scenario starts from an empty cluster.
func (h *Harness) Reset(ctx context.Context) error {
	if h.ResetGuard != nil {
		return h.ResetGuard(ctx, func() error { return h.reset(ctx) })
	}
	return h.reset(ctx)
}

func (h *Harness) reset(ctx context.Context) error {
	for _, gvk := range ResetKinds {
		obj := &unstructured.Unstructured{}
		obj.SetGroupVersionKind(gvk)
		if err := h.Client.DeleteAllOf(ctx, obj); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete all %s: %w", gvk.GroupKind(), err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, gvk := range ResetKinds {
		for {
			list := &unstructured.UnstructuredList{}
			list.SetGroupVersionKind(gvk.GroupVersion().WithKind(gvk.Kind + "List"))
			if err := h.Client.List(ctx, list); err != nil {
				return fmt.Errorf("list %s: %w", gvk.GroupKind(), err)
			}
			if len(list.Items) == 0 {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("reset: %d %s still present", len(list.Items), gvk.GroupKind())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// Node reads a core/v1 Node.
func (h *Harness) Node(ctx context.Context, name string) (*corev1.Node, error) {
	n := &corev1.Node{}
	if err := h.Client.Get(ctx, client.ObjectKey{Name: name}, n); err != nil {
		return nil, err
	}
	return n, nil
}

// NodeCalicoLabels returns a node's Calico label set: its Kubernetes labels merged with the
// JSON map in the projectcalico.org/labels annotation, Kubernetes labels winning a clash.
func (h *Harness) NodeCalicoLabels(ctx context.Context, name string) (map[string]string, error) {
	n, err := h.Node(ctx, name)
	if err != nil {
		return nil, err
	}
	return CalicoLabels(n)
}

// CalicoLabels is the Calico label set of a node (see NodeCalicoLabels).
func CalicoLabels(n *corev1.Node) (map[string]string, error) {
	out := map[string]string{}
	if raw, ok := n.Annotations[CalicoLabelsAnnotation]; ok && raw != "" {
		var calico map[string]string
		if err := json.Unmarshal([]byte(raw), &calico); err != nil {
			return nil, fmt.Errorf("node %q: annotation %s: %w", n.Name, CalicoLabelsAnnotation, err)
		}
		for k, v := range calico {
			out[k] = v
		}
	}
	for k, v := range n.Labels {
		out[k] = v
	}
	return out, nil
}
