//go:build e2e

package helm

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rrguard/rrguard/internal/scenario"
	"github.com/rrguard/rrguard/internal/scenario/live"
	"github.com/rrguard/rrguard/pkg/admission"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/test/harness"
	"github.com/rrguard/rrguard/test/offline"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// The webhook process standing in for the chart's pod, stopped when TestInstall ends.
var webhook struct {
	stop func()
	port int
}

// TestInstall installs the chart as docs/helm.md says, on a cluster without cert-manager:
// server-side dry run, install, the webhook running as the chart's pod with the chart's
// certificate answering the seed story through the webhook configurations the chart registered,
// the emergency switch undone by `helm upgrade` with the same certificate, a server-side dry
// run of the upgrade once cert-manager's CRDs are there, and uninstall. The steps depend on one
// another and stop at the first failure.
func TestInstall(t *testing.T) {
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"namespace", createNamespace},
		{"dry run", dryRun},
		{"install", install},
		{"webhook with the chart's certificate", runWebhook},
		{"seed story", seedStory},
		{"emergency switch, then helm upgrade", emergencySwitchAndUpgrade},
		{"cert-manager: upgrade dry run", certManagerDryRun},
		{"uninstall", uninstall},
	}
	t.Cleanup(func() {
		if webhook.stop != nil {
			webhook.stop()
		}
	})
	for _, s := range steps {
		start := time.Now()
		ok := t.Run(s.name, s.run)
		t.Logf("%s: %v", s.name, time.Since(start).Round(10*time.Millisecond))
		if !ok {
			t.FailNow()
		}
	}
}

// createNamespace: docs/helm.md's first step, the namespace with the restricted Pod Security
// level (the chart's pods meet it).
func createNamespace(t *testing.T) {
	for _, args := range [][]string{
		{"create", "namespace", namespace},
		{"label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted", "pod-security.kubernetes.io/warn=restricted"},
	} {
		if out, ok := h.KubectlText("", args...); !ok {
			t.Fatal(out)
		}
	}
}

// dryRun: the API server accepts every object of the chart in a server-side dry run, with
// no warning (Pod Security's included), and nothing is created.
func dryRun(t *testing.T) {
	r := runHelm(t, "install", release, chartDir, "--namespace", namespace, "--dry-run=server")
	if r.err != nil {
		t.Fatal(r.err)
	}
	if strings.Contains(r.stderr, "Warning") {
		t.Errorf("warnings:\n%s", r.stderr)
	}
	for _, kind := range []string{"kind: Secret", "kind: Deployment", "kind: ValidatingWebhookConfiguration", "kind: MutatingWebhookConfiguration"} {
		if !strings.Contains(r.stdout, kind) {
			t.Errorf("the dry run's manifest has no %s", kind)
		}
	}
	err := h.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: "rrguard-webhook"}, &appsv1.Deployment{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("after the dry run, Deployment rrguard-webhook: %v, want not found", err)
	}
}

// install: `helm install` creates every object it renders; the webhook configurations carry
// the CA of the Secret it made.
func install(t *testing.T) {
	ctx := context.Background()
	if r := runHelm(t, "install", release, chartDir, "--namespace", namespace); r.err != nil {
		t.Fatal(r.err)
	}
	r := runHelm(t, "get", "manifest", release, "--namespace", namespace)
	if r.err != nil {
		t.Fatal(r.err)
	}
	objs, err := decodeYAML([]byte(r.stdout))
	if err != nil || len(objs) < 10 {
		t.Fatalf("helm get manifest: %d objects, %v", len(objs), err)
	}
	for _, o := range objs {
		got := o.DeepCopy()
		if err := h.Client.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
			t.Errorf("%s %s not installed: %v", o.GetKind(), o.GetName(), err)
		}
	}
	ca := secretData(t)["ca.crt"]
	for name, bundle := range caBundles(t) {
		if string(bundle) != string(ca) {
			t.Errorf("webhook %s: caBundle is not the Secret's ca.crt", name)
		}
	}
}

func secretData(t *testing.T) map[string][]byte {
	t.Helper()
	var s corev1.Secret
	if err := h.Client.Get(context.Background(), client.ObjectKey{Namespace: namespace, Name: "rrguard-webhook-tls"}, &s); err != nil {
		t.Fatal(err)
	}
	return s.Data
}

// caBundles returns each registered webhook's CA bundle by webhook name.
func caBundles(t *testing.T) map[string][]byte {
	t.Helper()
	ctx := context.Background()
	var m admissionregistrationv1.MutatingWebhookConfiguration
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	if err := h.Client.Get(ctx, client.ObjectKey{Name: "rrguard"}, &m); err != nil {
		t.Fatal(err)
	}
	if err := h.Client.Get(ctx, client.ObjectKey{Name: "rrguard"}, &v); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, w := range m.Webhooks {
		out[w.Name] = w.ClientConfig.CABundle
	}
	for _, w := range v.Webhooks {
		out[w.Name] = w.ClientConfig.CABundle
	}
	if len(out) != 4 {
		t.Fatalf("%d webhooks registered, want 4", len(out))
	}
	return out
}

// runWebhook runs bin/webhook as a kubelet would run the installed Deployment's container: its
// arguments and environment, its volumes from the installed Secret (the chart's certificate)
// and ConfigMaps, the ServiceAccount's identity. The API server reaches it through the
// registered webhook configurations as they are, calling Service rrguard-webhook, which here
// is an ExternalName for 127.0.0.1 (no pods, no kube-proxy): the TLS name it checks is the
// Service's, rrguard-webhook.rrguard-system.svc, against the chart's CA. Only the port differs,
// the process's own.
func runWebhook(t *testing.T) {
	ctx := context.Background()
	bin, err := h.Build("./cmd/webhook")
	if err != nil {
		t.Fatal(err)
	}
	var d appsv1.Deployment
	if err := h.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "rrguard-webhook"}, &d); err != nil {
		t.Fatal(err)
	}
	var c *corev1.Container
	for i := range d.Spec.Template.Spec.Containers {
		if d.Spec.Template.Spec.Containers[i].Name == "webhook" {
			c = &d.Spec.Template.Spec.Containers[i]
		}
	}
	if c == nil {
		t.Fatal("Deployment rrguard-webhook has no container webhook")
	}
	scratch := t.TempDir()
	mounts := map[string]string{}
	for _, m := range c.VolumeMounts {
		var vol *corev1.Volume
		for i := range d.Spec.Template.Spec.Volumes {
			if d.Spec.Template.Spec.Volumes[i].Name == m.Name {
				vol = &d.Spec.Template.Spec.Volumes[i]
			}
		}
		if vol == nil {
			t.Fatalf("volumeMount %s has no volume", m.Name)
		}
		files := map[string][]byte{}
		switch {
		case vol.Secret != nil:
			var s corev1.Secret
			if err := h.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: vol.Secret.SecretName}, &s); err != nil {
				t.Fatalf("volume %s: %v", vol.Name, err)
			}
			files = s.Data
		case vol.ConfigMap != nil:
			var cm corev1.ConfigMap
			if err := h.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: vol.ConfigMap.Name}, &cm); err != nil {
				t.Fatalf("volume %s: %v", vol.Name, err)
			}
			for k, v := range cm.Data {
				files[k] = []byte(v)
			}
		default:
			t.Fatalf("volume %s: the test knows Secrets and ConfigMaps only", vol.Name)
		}
		dir := filepath.Join(scratch, m.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for k, v := range files {
			if err := os.WriteFile(filepath.Join(dir, k), v, 0o444); err != nil {
				t.Fatal(err)
			}
		}
		mounts[m.MountPath] = dir
	}
	var args []string
	for _, a := range c.Args {
		for path, dir := range mounts {
			if rest, ok := strings.CutPrefix(a, "--"); ok {
				if name, value, ok := strings.Cut(rest, "="); ok && (value == path || strings.HasPrefix(value, path+"/")) {
					a = "--" + name + "=" + dir + strings.TrimPrefix(value, path)
				}
			}
		}
		args = append(args, a)
	}
	webhook.port = harness.FreePortFor(t)
	probes, metrics := harness.FreePortFor(t), harness.FreePortFor(t)
	args = append(args, "--host=127.0.0.1", fmt.Sprintf("--port=%d", webhook.port),
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metrics), fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probes))
	env := []string{"HOME=" + scratch, "KUBECONFIG=" + serviceAccountKubeconfig(t, scratch, d.Spec.Template.Spec.ServiceAccountName)}
	for _, e := range c.Env {
		env = append(env, e.Name+"="+envValue(t, d.Namespace, c, e))
	}

	runCtx, stop := context.WithCancel(ctx)
	cmd := exec.CommandContext(runCtx, bin, args...)
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Env = env
	logs := &harness.LogBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var once sync.Once
	webhook.stop = func() { once.Do(func() { stop(); <-exited }) }
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("webhook %v\n%s", args, logs.String())
		}
	})
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", probes)
	if err := harness.Poll(time.Minute, func() error {
		select {
		case err := <-exited:
			exited <- err
			return fmt.Errorf("webhook exited: %v", err)
		default:
		}
		return harness.Ready(readyz)
	}); err != nil {
		t.Fatalf("webhook not ready (%s): %v", readyz, err)
	}

	// The Service the webhooks call, resolved to this process.
	if err := h.Client.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "rrguard-webhook"}}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "rrguard-webhook"},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "127.0.0.1"},
	}
	if err := harness.Poll(30*time.Second, func() error { return h.Client.Create(ctx, svc) }); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"mutatingwebhookconfiguration", "validatingwebhookconfiguration"} {
		out := h.Kubectl(ctx, nil, "get", kind, "rrguard", "-o", "jsonpath={range .webhooks[*]}{.name}{\"\\n\"}{end}")
		if out.Err != nil {
			t.Fatal(out.Err)
		}
		var ops []string
		for i := range strings.Fields(out.Stdout) {
			ops = append(ops, fmt.Sprintf(`{"op":"replace","path":"/webhooks/%d/clientConfig/service/port","value":%d}`, i, webhook.port))
		}
		if out := h.Kubectl(ctx, nil, "patch", kind, "rrguard", "--type=json", "-p", "["+strings.Join(ops, ",")+"]"); out.Err != nil {
			t.Fatalf("%v\n%s", out.Err, out.Stderr)
		}
	}
	const badPeer = "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: helm-bad-peer}\nspec: {nodeSelector: \"all()\", peerSelector: \"has(x\"}\n"
	if err := harness.Poll(30*time.Second, func() error {
		out, ok := h.KubectlText(badPeer, "apply", "--dry-run=server", "-f", "-")
		if ok || !strings.Contains(out, "selector-syntax") {
			return fmt.Errorf("a peer with a broken selector: ok=%v %s", ok, out)
		}
		return nil
	}); err != nil {
		t.Fatalf("the API server does not reach the webhook through the chart's registrations: %v", err)
	}
}

// seedStory plays the seed tutorial (test/scenarios/seed-tutorial.yaml) through kubectl and
// calicoctl: every step as the scenario expects, and the first refusal — the mesh turned off
// before any reflector exists — with the very message rrguard's admission gives, which is what
// the kustomize install answers (test/admission, test/deploy).
func seedStory(t *testing.T) {
	scenarios, err := scenario.LoadDirs([]string{filepath.Join(h.RootDir, "test", "scenarios")})
	if err != nil {
		t.Fatal(err)
	}
	var seed *scenario.Scenario
	for _, s := range scenarios {
		if s.Name == "seed-tutorial" {
			seed = s
		}
	}
	if seed == nil {
		t.Fatal("no scenario seed-tutorial in test/scenarios")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	obs, err := (&live.Runner{H: h}).Run(ctx, seed)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range obs {
		for _, d := range live.Check(o) {
			t.Errorf("step %d %q (%s): %s", o.Index, o.Step.Name, o.Command, d)
		}
	}
	first := obs[0]
	if !slices.Contains(first.Step.Deny, "mesh-disable-needs-reflectors") {
		t.Fatalf("the seed tutorial no longer starts with the mesh off too early: %q", first.Step.Name)
	}
	resp, err := offline.NewCluster(seed.Initial).Do(&admission.Reviewer{Engine: validate.New(validate.DefaultConfig())}, first.Step)
	if err != nil {
		t.Fatal(err)
	}
	// kubectl prints an Invalid status as its causes, one line each: field and message.
	if resp.Allowed || resp.Result == nil || resp.Result.Details == nil || len(resp.Result.Details.Causes) == 0 {
		t.Fatalf("rrguard's admission allows step 1 offline: %+v", resp.Result)
	}
	for _, c := range resp.Result.Details.Causes {
		if line := "* " + c.Field + ": " + c.Message; !strings.Contains(first.Message, line) {
			t.Errorf("step 1 through the chart's webhook:\n%s\nwant rrguard's admission cause:\n%s", first.Message, line)
		}
	}
	t.Logf("step 1 refused: %s", first.Message)
}

// emergencySwitchAndUpgrade: docs/helm.md's emergency switch takes rrguard out of every
// request; `helm upgrade` puts the webhooks back, with the certificate it made at install.
func emergencySwitchAndUpgrade(t *testing.T) {
	ctx := context.Background()
	before := secretData(t)
	if out, ok := h.KubectlText("", "delete", "validatingwebhookconfiguration,mutatingwebhookconfiguration", "rrguard"); !ok {
		t.Fatal(out)
	}
	const peer = "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: helm-bad-peer}\nspec: {nodeSelector: \"all()\", peerSelector: \"has(x\"}\n"
	if out, ok := h.KubectlText(peer, "apply", "--dry-run=server", "-f", "-"); !ok {
		t.Errorf("with the webhooks deleted a change rrguard refuses still fails: %s", out)
	}
	// The Service goes back to the chart's (the ExternalName was the test's).
	if err := h.Client.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "rrguard-webhook"}}); err != nil {
		t.Fatal(err)
	}
	webhook.stop()
	if r := runHelm(t, "upgrade", release, chartDir, "--namespace", namespace); r.err != nil {
		t.Fatal(r.err)
	}
	after := secretData(t)
	for _, k := range []string{"ca.crt", "tls.crt", "tls.key"} {
		if string(after[k]) != string(before[k]) {
			t.Errorf("helm upgrade changed the Secret's %s: the CA bundle and the served certificate must survive upgrades", k)
		}
	}
	for name, bundle := range caBundles(t) {
		if string(bundle) != string(after["ca.crt"]) {
			t.Errorf("after helm upgrade, webhook %s: caBundle is not the Secret's ca.crt", name)
		}
	}
	var svc corev1.Service
	if err := h.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: "rrguard-webhook"}, &svc); err != nil || svc.Spec.Type != corev1.ServiceTypeClusterIP {
		t.Errorf("after helm upgrade, Service rrguard-webhook: %v %v", svc.Spec.Type, err)
	}
}

// certManagerDryRun: once the cluster serves cert-manager.io/v1, the chart (certificates.mode
// auto) takes its certificate from cert-manager: the API server accepts its Issuers and
// Certificates, and the webhook configurations ask cert-manager to inject the CA.
func certManagerDryRun(t *testing.T) {
	dir, err := harness.ModuleDir(h.RootDir, "github.com/cert-manager/cert-manager")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := envtest.InstallCRDs(h.Config, envtest.CRDInstallOptions{Paths: []string{filepath.Join(dir, "deploy", "crds")}, ErrorIfPathMissing: true}); err != nil {
		t.Fatal(err)
	}
	var r helmResult
	if err := harness.Poll(time.Minute, func() error {
		r = runHelm(t, "upgrade", release, chartDir, "--namespace", namespace, "--dry-run=server")
		if r.err == nil && !strings.Contains(r.stdout, "kind: Certificate") {
			return errors.New("no Certificate rendered yet (discovery has not seen cert-manager.io/v1)")
		}
		return r.err
	}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"kind: Issuer", "name: rrguard-serving-cert", "cert-manager.io/inject-ca-from: " + namespace + "/rrguard-serving-cert"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the dry run's manifest has no %q", want)
		}
	}
	if strings.Contains(r.stdout, "kind: Secret") {
		t.Error("with cert-manager, the chart still makes the Secret itself")
	}
}

// uninstall: `helm uninstall` removes what it installed, the webhooks first among them.
func uninstall(t *testing.T) {
	ctx := context.Background()
	if r := runHelm(t, "uninstall", release, "--namespace", namespace); r.err != nil {
		t.Fatal(r.err)
	}
	for _, o := range []client.Object{
		&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "rrguard"}},
		&admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "rrguard"}},
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "rrguard-webhook"}},
		&corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "rrguard-webhook-tls"}},
	} {
		if err := h.Client.Get(ctx, client.ObjectKeyFromObject(o), o); !apierrors.IsNotFound(err) {
			t.Errorf("%T %s after helm uninstall: %v", o, o.GetName(), err)
		}
	}
}

// serviceAccountKubeconfig writes the admin kubeconfig acting as the ServiceAccount, the way a
// pod's token would authenticate.
func serviceAccountKubeconfig(t *testing.T, dir, sa string) string {
	t.Helper()
	cfg, err := clientcmd.Load(h.Env.KubeConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate = "system:serviceaccount:" + namespace + ":" + sa
		ai.ImpersonateGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// envValue is what the kubelet puts into an environment variable of the container.
func envValue(t *testing.T, ns string, c *corev1.Container, e corev1.EnvVar) string {
	t.Helper()
	switch {
	case e.ValueFrom == nil:
		return e.Value
	case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
		return ns
	case e.ValueFrom.ResourceFieldRef != nil:
		ref := e.ValueFrom.ResourceFieldRef
		name, _ := strings.CutPrefix(ref.Resource, "limits.")
		q, ok := c.Resources.Limits[corev1.ResourceName(name)]
		if !ok {
			t.Fatalf("env %s: %s is not a limit of the container", e.Name, ref.Resource)
		}
		divisor := resource.MustParse("1")
		if !ref.Divisor.IsZero() {
			divisor = ref.Divisor
		}
		return fmt.Sprint(int64(math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue()))))
	}
	t.Fatalf("env %s: unsupported source %+v", e.Name, e.ValueFrom)
	return ""
}
