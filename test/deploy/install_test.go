//go:build e2e

package deploy

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/rrguard/rrguard/test/harness"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"
)

// The identity a Pod of the Deployment has: its ServiceAccount's user and groups.
var (
	saUser   = "system:serviceaccount:" + namespace + ":" + serviceAccount
	saGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
)

// badPeer is refused by rrguard alone (a peerSelector that does not parse).
const badPeer = "apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: deploy-bad-peer}\nspec: {nodeSelector: \"all()\", peerSelector: \"has(x\"}\n"

// TestInstall follows docs/install.md on a cluster with the Calico CRDs: without cert-manager,
// with it (dry run, apply, re-apply), rrguard's image binary running with the Deployment's
// arguments as its ServiceAccount, what that ServiceAccount may and may not do, the emergency
// switch, and uninstall. The steps depend on one another and stop at the first failure.
func TestInstall(t *testing.T) {
	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"namespace", createNamespace},
		{"without cert-manager", withoutCertManager},
		{"dry run", dryRun},
		{"apply", apply},
		{"webhook as its ServiceAccount", webhookAsServiceAccount},
		{"ServiceAccount permissions", serviceAccountPermissions},
		{"emergency switch", emergencySwitch},
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

// createNamespace applies config/webhook/namespace.yaml alone, docs/install.md's first step: a
// server-side dry run cannot create the namespace its namespaced objects go into.
func createNamespace(t *testing.T) {
	if out, ok := h.KubectlText("", "apply", "--server-side", "-f", filepath.Join(h.RootDir, "config", "webhook", "namespace.yaml")); !ok {
		t.Fatal(out)
	}
}

// withoutCertManager: before cert-manager's CRDs exist, config/webhook is refused for its
// Certificates, and the overlay with the without-cert-manager component is accepted whole.
func withoutCertManager(t *testing.T) {
	if out, ok := h.KubectlText("", "apply", "--server-side", "--dry-run=server", "-k", filepath.Join(h.RootDir, "config", "webhook")); ok || !strings.Contains(out, "cert-manager.io/v1") {
		t.Errorf("config/webhook without cert-manager: ok=%v, want refused for the cert-manager kinds:\n%s", ok, out)
	}
	dir := t.TempDir()
	if err := os.CopyFS(filepath.Join(dir, "config"), os.DirFS(filepath.Join(h.RootDir, "config"))); err != nil {
		t.Fatal(err)
	}
	overlay := filepath.Join(dir, "rrguard")
	if err := os.MkdirAll(overlay, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(overlay, "kustomization.yaml"), []byte("resources: [../config/webhook]\ncomponents: [../config/components/without-cert-manager]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, ok := h.KubectlText("", "apply", "--server-side", "--dry-run=server", "-k", overlay)
	if !ok || strings.Contains(out, "Warning") {
		t.Errorf("the without-cert-manager overlay: ok=%v\n%s", ok, out)
	}
	installWithoutCertManager(t, dir)

	// From here on cert-manager's CRDs are there, as a user who has cert-manager has them.
	dirCRDs := filepath.Join(moduleDir(t, "github.com/cert-manager/cert-manager"), "deploy", "crds")
	if _, err := envtest.InstallCRDs(h.Config, envtest.CRDInstallOptions{Paths: []string{dirCRDs}, ErrorIfPathMissing: true}); err != nil {
		t.Fatalf("install cert-manager's CRDs from %s: %v", dirCRDs, err)
	}
}

// installWithoutCertManager runs docs/install.md's "Without cert-manager" commands in dir
// (which holds config/ and the overlay, rrguard/ there, overlay/ on the page): openssl makes
// the certificates, the Secret is created, the overlay applied, the caBundle patched in; and the
// caBundle survives applying the overlay again.
func installWithoutCertManager(t *testing.T, dir string) {
	ctx := context.Background()
	raw, err := os.ReadFile(filepath.Join(h.RootDir, "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, _ := strings.Cut(string(raw), "\n## Without cert-manager\n")
	_, script, _ := strings.Cut(section, "```sh\n")
	script, _, _ = strings.Cut(script, "```")
	if !strings.Contains(script, "openssl") {
		t.Fatal("docs/install.md: no commands under \"Without cert-manager\"")
	}
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Fatal("docs/install.md's \"Without cert-manager\" needs openssl: apt-get install openssl")
	}
	if err := os.Rename(filepath.Join(dir, "rrguard"), filepath.Join(dir, "overlay")); err != nil {
		t.Fatal(err)
	}
	// kubectl on the PATH is the test cluster's.
	tools := filepath.Join(dir, "tools")
	if err := os.MkdirAll(tools, 0o755); err != nil {
		t.Fatal(err)
	}
	wrapper := fmt.Sprintf("#!/bin/sh\nexec %q --kubeconfig %q \"$@\"\n", filepath.Join(h.BinDir, "kubectl"), h.Kubeconfig)
	if err := os.WriteFile(filepath.Join(tools, "kubectl"), []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	run := func(script string) {
		t.Helper()
		cmd := exec.Command("bash", "-euo", "pipefail", "-c", script)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "PATH="+tools+string(os.PathListSeparator)+os.Getenv("PATH"), "HOME="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s\n%s", err, script, out)
		}
	}
	run(script)
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		var secret corev1.Secret
		if err := h.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "rrguard-webhook-tls"}, &secret); err != nil || len(secret.Data["tls.crt"]) == 0 {
			t.Errorf("%s: Secret rrguard-webhook-tls: %v", when, err)
		}
		var m admissionregistrationv1.MutatingWebhookConfiguration
		var v admissionregistrationv1.ValidatingWebhookConfiguration
		if err := h.Client.Get(ctx, client.ObjectKey{Name: "rrguard"}, &m); err != nil {
			t.Fatal(err)
		}
		if err := h.Client.Get(ctx, client.ObjectKey{Name: "rrguard"}, &v); err != nil {
			t.Fatal(err)
		}
		bundles := []string{}
		for _, w := range m.Webhooks {
			bundles = append(bundles, string(w.ClientConfig.CABundle))
		}
		for _, w := range v.Webhooks {
			bundles = append(bundles, string(w.ClientConfig.CABundle))
		}
		for i, b := range bundles {
			if b != string(ca) {
				t.Errorf("%s: webhook %d of %d has caBundle %q, want ca.crt", when, i+1, len(bundles), b)
			}
		}
	}
	check("after the documented commands")
	run("kubectl apply --server-side -k overlay")
	check("after applying the overlay again")
}

// dryRun: `kubectl apply --server-side --dry-run=server -k config/webhook` is accepted whole,
// with no warning (the restricted Pod Security level included).
func dryRun(t *testing.T) {
	out, ok := h.KubectlText("", "apply", "--server-side", "--dry-run=server", "-k", filepath.Join(h.RootDir, "config", "webhook"))
	if !ok || strings.Contains(out, "Warning") {
		t.Fatalf("dry run: ok=%v\n%s", ok, out)
	}
	if n, want := strings.Count(out, "(server dry run)"), len(render(t, "config/webhook")); n != want {
		t.Errorf("dry run applied %d objects, config/webhook has %d:\n%s", n, want, out)
	}
}

// apply: the README's install command creates every object, and running it again (an upgrade
// to the same version) changes nothing.
func apply(t *testing.T) {
	ctx := context.Background()
	if out, ok := h.KubectlText("", "apply", "--server-side", "-k", filepath.Join(h.RootDir, "config", "webhook")); !ok || strings.Contains(out, "Warning") {
		t.Fatalf("apply: ok=%v\n%s", ok, out)
	}
	objs := render(t, "config/webhook")
	versions := map[string]string{}
	for _, o := range objs {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		if err := h.Client.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
			t.Errorf("%s %s not installed: %v", o.GetKind(), o.GetName(), err)
			continue
		}
		versions[o.GetKind()+"/"+o.GetName()] = got.GetResourceVersion()
	}
	out, ok := h.KubectlText("", "apply", "--server-side", "-k", filepath.Join(h.RootDir, "config", "webhook"))
	if !ok {
		t.Fatalf("apply again: %s", out)
	}
	for _, o := range objs {
		got := &unstructured.Unstructured{}
		got.SetGroupVersionKind(o.GroupVersionKind())
		if err := h.Client.Get(ctx, client.ObjectKeyFromObject(o), got); err == nil && got.GetResourceVersion() != versions[o.GetKind()+"/"+o.GetName()] {
			t.Errorf("applying the same manifests again changed %s %s", o.GetKind(), o.GetName())
		}
	}
}

// webhookAsServiceAccount runs the image's webhook binary as a kubelet would run the
// Deployment's container: its arguments and environment, its volumes (the ConfigMaps as
// rendered, a serving certificate in place of cert-manager's Secret), the ServiceAccount's
// identity. It becomes ready, answers the API server through the rendered webhook
// configurations, and its audit, elected leader, writes the report.
func webhookAsServiceAccount(t *testing.T) {
	ctx := context.Background()
	bin, version := imageBinaries(t)
	objs := render(t, "config/webhook")
	d, c := renderedDeployment(t, objs)
	scratch := t.TempDir()

	ca, err := harness.NewCA("rrguard-deploy-test-ca")
	if err != nil {
		t.Fatal(err)
	}
	var servingSecret string
	for _, o := range objs {
		if o.GetKind() == "Certificate" && o.GetName() == "rrguard-serving-cert" {
			servingSecret, _, _ = unstructured.NestedString(o.Object, "spec", "secretName")
		}
	}
	// Volumes, mounted where the container expects them: the longest mount path first, so that
	// nested mounts map right.
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
		dir := filepath.Join(scratch, m.Name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		switch {
		case vol.Secret != nil && vol.Secret.SecretName == servingSecret:
			// cert-manager's Secret holds tls.crt, tls.key and ca.crt.
			data := t.TempDir()
			if _, err := ca.WriteServing(data); err != nil {
				t.Fatal(err)
			}
			files := map[string][]byte{"ca.crt": ca.CertPEM}
			for _, k := range []string{"tls.crt", "tls.key"} {
				if files[k], err = os.ReadFile(filepath.Join(data, k)); err != nil {
					t.Fatal(err)
				}
			}
			mountLikeKubelet(t, dir, files)
		case vol.ConfigMap != nil:
			cm := typed[corev1.ConfigMap](t, find(t, objs, "ConfigMap", vol.ConfigMap.Name))
			files := map[string][]byte{}
			for k, v := range cm.Data {
				files[k] = []byte(v)
			}
			mountLikeKubelet(t, dir, files)
		default:
			t.Fatalf("volume %s: the test knows ConfigMaps and the serving certificate's Secret only: %+v", vol.Name, vol.VolumeSource)
		}
		mounts[m.MountPath] = dir
	}
	paths := make([]string, 0, len(mounts))
	for p := range mounts {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool { return len(paths[i]) > len(paths[j]) })
	var args []string
	for _, a := range c.Args {
		for _, p := range paths {
			if i := strings.Index(a, "="+p); i >= 0 {
				a = a[:i+1] + mounts[p] + a[i+1+len(p):]
				break
			}
		}
		args = append(args, a)
	}
	// Ports of its own on loopback (other test packages run at the same time); later flags win.
	port, metrics, probes := harness.FreePortFor(t), harness.FreePortFor(t), harness.FreePortFor(t)
	args = append(args, "--host=127.0.0.1", fmt.Sprintf("--port=%d", port),
		fmt.Sprintf("--metrics-bind-address=127.0.0.1:%d", metrics), fmt.Sprintf("--health-probe-bind-address=127.0.0.1:%d", probes))

	env := []string{"HOME=" + scratch, "KUBECONFIG=" + impersonatingKubeconfig(t, scratch)}
	for _, e := range c.Env {
		env = append(env, e.Name+"="+envValue(t, d, c, e))
	}

	runCtx, stop := context.WithCancel(ctx)
	cmd := exec.CommandContext(runCtx, filepath.Join(bin, "webhook"), args...)
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
	webhook.stop = func() {
		once.Do(func() {
			stop()
			<-exited
		})
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("webhook %v\n%s", args, logs.String())
		}
	})

	start := time.Now()
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
	t.Logf("webhook ready %v after start (caches synced as %s)", time.Since(start).Round(10*time.Millisecond), saUser)
	if !strings.Contains(logs.String(), `"version":"`+version+`"`) {
		t.Errorf("the webhook did not log its stamped version %s", version)
	}

	// The API server calls it through the rendered webhook configurations, pointed at this
	// process instead of the Service (which has no Pods here).
	removeWebhookConfigurations(t)
	file := filepath.Join(scratch, "webhooks.yaml")
	var docs []string
	for _, o := range objs {
		if strings.HasSuffix(o.GetKind(), "WebhookConfiguration") {
			raw, err := yaml.Marshal(o.Object)
			if err != nil {
				t.Fatal(err)
			}
			docs = append(docs, string(raw))
		}
	}
	if err := os.WriteFile(file, []byte(strings.Join(docs, "---\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := h.RegisterWebhooks(ctx, file, fmt.Sprintf("https://127.0.0.1:%d", port), ca.CertPEM); err != nil {
		t.Fatal(err)
	}
	if err := harness.Poll(30*time.Second, func() error {
		out, ok := h.KubectlText(badPeer, "apply", "--dry-run=server", "-f", "-")
		if ok || !strings.Contains(out, "selector-syntax") {
			return fmt.Errorf("a peer with a broken selector: ok=%v %s", ok, out)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// Mutation: a node given a cluster ID gets the reflector label, though rrguard may not
	// write Nodes: the API server applies the webhook's patch.
	node := "apiVersion: v1\nkind: Node\nmetadata:\n  name: deploy-rr-1\n  annotations:\n    projectcalico.org/IPv4Address: 10.7.0.1/24\n    projectcalico.org/RouteReflectorClusterID: 1.0.0.1\n"
	if out, ok := h.KubectlText(node, "create", "-f", "-"); !ok {
		t.Fatal(out)
	}
	var n corev1.Node
	if err := h.Client.Get(ctx, client.ObjectKey{Name: "deploy-rr-1"}, &n); err != nil {
		t.Fatal(err)
	}
	if n.Labels["route-reflector"] != "true" {
		t.Errorf("node labels %v: the mutating webhook did not add route-reflector=true", n.Labels)
	}

	// The audit: one replica (this one) is elected and writes the report as the ServiceAccount.
	if err := harness.Poll(time.Minute, func() error {
		report := &unstructured.Unstructured{}
		report.SetAPIVersion("openreports.io/v1alpha1")
		report.SetKind("ClusterReport")
		return h.Client.Get(ctx, client.ObjectKey{Name: "rrguard"}, report)
	}); err != nil {
		t.Errorf("no audit report: %v", err)
	}
	var lease coordinationv1.Lease
	if err := h.Client.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "rrguard-audit"}, &lease); err != nil {
		t.Errorf("no leader-election Lease in %s: %v", namespace, err)
	} else if lease.Spec.HolderIdentity == nil || *lease.Spec.HolderIdentity == "" {
		t.Errorf("Lease %s has no holder", lease.Name)
	}
	if strings.Contains(logs.String(), "forbidden") {
		t.Errorf("the webhook was refused something as %s:\n%s", saUser, logs.String())
	}
}

// webhook is the process webhookAsServiceAccount started; stop ends it.
var webhook struct{ stop func() }

// serviceAccountPermissions: as the ServiceAccount, what rrguard does works and the rest —
// Secrets, writing Nodes or Calico objects, anything outside its namespace's Leases — is
// forbidden.
func serviceAccountPermissions(t *testing.T) {
	ctx := context.Background()
	if out, ok := h.KubectlText("", "apply", "--server-side", "-k", filepath.Join(h.RootDir, "config", "crd", "wgpolicy")); !ok {
		t.Fatalf("install the wg-policy CRD: %s", out)
	}
	cfg := rest.CopyConfig(h.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: saUser, Groups: saGroups}
	sa, err := client.New(cfg, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	list := func(apiVersion, kind string) client.ObjectList {
		l := &unstructured.UnstructuredList{}
		l.SetAPIVersion(apiVersion)
		l.SetKind(kind + "List")
		return l
	}
	obj := func(apiVersion, kind, ns, name string, fields map[string]any) *unstructured.Unstructured {
		u := &unstructured.Unstructured{Object: map[string]any{}}
		for k, v := range fields {
			u.Object[k] = v
		}
		u.SetAPIVersion(apiVersion)
		u.SetKind(kind)
		u.SetNamespace(ns)
		u.SetName(name)
		return u
	}
	now := metav1.NewMicroTime(time.Now())
	allowed := map[string]func() error{
		"list nodes":                       func() error { return sa.List(ctx, &corev1.NodeList{}) },
		"list crd.projectcalico.org peers": func() error { return sa.List(ctx, list("crd.projectcalico.org/v1", "BGPPeer")) },
		"list crd.projectcalico.org configurations": func() error {
			return sa.List(ctx, list("crd.projectcalico.org/v1", "BGPConfiguration"))
		},
		"list projectcalico.org peers":          func() error { return sa.List(ctx, list("projectcalico.org/v3", "BGPPeer")) },
		"list projectcalico.org configurations": func() error { return sa.List(ctx, list("projectcalico.org/v3", "BGPConfiguration")) },
		"write a ClusterReport": func() error {
			return createUpdatePatch(ctx, sa, obj("openreports.io/v1alpha1", "ClusterReport", "", "deploy-test", map[string]any{"source": "rrguard"}))
		},
		"write a ClusterPolicyReport": func() error {
			return harness.Poll(30*time.Second, func() error { // the CRD was just installed
				return createUpdatePatch(ctx, sa, obj("wgpolicyk8s.io/v1alpha2", "ClusterPolicyReport", "", "deploy-test", nil))
			})
		},
		// Events about Nodes (cluster-scoped) go to the default namespace: hence a ClusterRole.
		"create an Event": func() error {
			return sa.Create(ctx, &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, GenerateName: "deploy-test-"},
				InvolvedObject: corev1.ObjectReference{Kind: "Node", Name: "deploy-rr-1", APIVersion: "v1"}, Reason: "Test", Message: "test", Type: corev1.EventTypeNormal})
		},
		"create an events.k8s.io Event": func() error {
			return sa.Create(ctx, &eventsv1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceDefault, GenerateName: "deploy-test-"},
				EventTime: now, ReportingController: "rrguard.io/audit", ReportingInstance: "test", Action: "Audit", Reason: "Test", Type: corev1.EventTypeNormal,
				Regarding: corev1.ObjectReference{Kind: "Node", Name: "deploy-rr-1", APIVersion: "v1"}})
		},
		"take a Lease in " + namespace: func() error {
			l := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "deploy-test"}}
			if err := sa.Create(ctx, l); err != nil {
				return err
			}
			return sa.Delete(ctx, l)
		},
	}
	for name, f := range allowed {
		if err := f(); err != nil {
			t.Errorf("%s as %s: %v", name, saUser, err)
		}
	}

	node := &corev1.Node{}
	if err := h.Client.Get(ctx, client.ObjectKey{Name: "deploy-rr-1"}, node); err != nil {
		t.Fatal(err)
	}
	forbidden := map[string]func() error{
		"read the serving certificate's Secret": func() error {
			return sa.Get(ctx, client.ObjectKey{Namespace: namespace, Name: "rrguard-webhook-tls"}, &corev1.Secret{})
		},
		"list Secrets":    func() error { return sa.List(ctx, &corev1.SecretList{}) },
		"list ConfigMaps": func() error { return sa.List(ctx, &corev1.ConfigMapList{}) },
		"list Pods":       func() error { return sa.List(ctx, &corev1.PodList{}) },
		"update a Node": func() error {
			n := node.DeepCopy()
			n.Labels["rrguard-test"] = "x"
			return sa.Update(ctx, n)
		},
		"patch a Node": func() error {
			return sa.Patch(ctx, node, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"rrguard-test":"x"}}}`)))
		},
		"update a Node's status": func() error { return sa.Status().Update(ctx, node.DeepCopy()) },
		"delete a Node":          func() error { return sa.Delete(ctx, node.DeepCopy()) },
		"create a crd.projectcalico.org BGPPeer": func() error {
			return sa.Create(ctx, obj("crd.projectcalico.org/v1", "BGPPeer", "", "deploy-test", map[string]any{"spec": map[string]any{"peerIP": "10.0.0.1", "asNumber": 64512}}))
		},
		"create a projectcalico.org BGPConfiguration": func() error {
			return sa.Create(ctx, obj("projectcalico.org/v3", "BGPConfiguration", "", "default", map[string]any{"spec": map[string]any{"nodeToNodeMeshEnabled": false}}))
		},
		"delete a ClusterReport": func() error {
			return sa.Delete(ctx, obj("openreports.io/v1alpha1", "ClusterReport", "", "deploy-test", nil))
		},
		"take a Lease in kube-system": func() error {
			return sa.Create(ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: "kube-system", Name: "deploy-test"}})
		},
		"scale its own Deployment": func() error {
			return sa.Update(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: deployment}})
		},
	}
	for name, f := range forbidden {
		if err := f(); !apierrors.IsForbidden(err) {
			t.Errorf("%s as %s: %v, want forbidden", name, saUser, err)
		}
	}
}

func createUpdatePatch(ctx context.Context, c client.Client, u *unstructured.Unstructured) error {
	if err := c.Create(ctx, u); err != nil {
		return fmt.Errorf("create: %w", err)
	}
	u.SetLabels(map[string]string{"rrguard-test": "updated"})
	if err := c.Update(ctx, u); err != nil {
		return fmt.Errorf("update: %w", err)
	}
	if err := c.Patch(ctx, u, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"labels":{"rrguard-test":"patched"}}}`))); err != nil {
		return fmt.Errorf("patch: %w", err)
	}
	return c.Get(ctx, client.ObjectKeyFromObject(u), u)
}

// emergencySwitch: deleting the two webhook configurations (docs/install.md) takes rrguard out
// of every request at once, even while it runs.
func emergencySwitch(t *testing.T) {
	if out, ok := h.KubectlText("", "delete", "validatingwebhookconfiguration,mutatingwebhookconfiguration", "rrguard"); !ok {
		t.Fatal(out)
	}
	if err := harness.Poll(30*time.Second, func() error {
		if out, ok := h.KubectlText(badPeer, "apply", "--dry-run=server", "-f", "-"); !ok {
			return errors.New(out)
		}
		return nil
	}); err != nil {
		t.Errorf("rrguard still answers after the emergency switch: %v", err)
	}
	if webhook.stop != nil {
		webhook.stop()
	}
}

// uninstall: `kubectl delete -k config/webhook` removes everything cluster-wide and the
// namespace (left Terminating here: a test control plane runs no namespace controller, hence
// --wait=false).
func uninstall(t *testing.T) {
	ctx := context.Background()
	if out, ok := h.KubectlText("", "delete", "-k", filepath.Join(h.RootDir, "config", "webhook"), "--ignore-not-found", "--wait=false"); !ok {
		t.Fatal(out)
	}
	for _, o := range render(t, "config/webhook") {
		if o.GetNamespace() != "" {
			continue
		}
		err := harness.Poll(30*time.Second, func() error {
			got := &unstructured.Unstructured{}
			got.SetGroupVersionKind(o.GroupVersionKind())
			err := h.Client.Get(ctx, client.ObjectKeyFromObject(o), got)
			switch {
			case apierrors.IsNotFound(err):
				return nil
			case err != nil:
				return err
			case o.GetKind() == "Namespace" && got.GetDeletionTimestamp() != nil:
				return nil
			}
			return errors.New("still there")
		})
		if err != nil {
			t.Errorf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
}

// mountLikeKubelet lays files out in dir as the kubelet mounts a Secret or ConfigMap volume:
// the data in a timestamped directory, a ..data link to it, and each key a link into ..data.
func mountLikeKubelet(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	ts := "..2026_01_01_00_00_00.000000001"
	if err := os.Mkdir(filepath.Join(dir, ts), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(ts, filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for k, v := range files {
		if err := os.WriteFile(filepath.Join(dir, ts, k), v, 0o444); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", k), filepath.Join(dir, k)); err != nil {
			t.Fatal(err)
		}
	}
}

// impersonatingKubeconfig writes the admin kubeconfig acting as the ServiceAccount, the way a
// Pod's token would authenticate.
func impersonatingKubeconfig(t *testing.T, dir string) string {
	t.Helper()
	cfg, err := clientcmd.Load(h.Env.KubeConfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ai := range cfg.AuthInfos {
		ai.Impersonate, ai.ImpersonateGroups = saUser, saGroups
	}
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// envValue is what the kubelet puts into an environment variable of the container.
func envValue(t *testing.T, d *appsv1.Deployment, c *corev1.Container, e corev1.EnvVar) string {
	t.Helper()
	switch {
	case e.ValueFrom == nil:
		return e.Value
	case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.namespace":
		return d.Namespace
	case e.ValueFrom.ResourceFieldRef != nil:
		ref := e.ValueFrom.ResourceFieldRef
		if ref.ContainerName != "" && ref.ContainerName != c.Name {
			t.Fatalf("env %s refers to container %s", e.Name, ref.ContainerName)
		}
		name, ok := strings.CutPrefix(ref.Resource, "limits.")
		q, has := c.Resources.Limits[corev1.ResourceName(name)]
		if !ok || !has {
			t.Fatalf("env %s: %s is not a limit of the container", e.Name, ref.Resource)
		}
		divisor := resource.MustParse("1")
		if !ref.Divisor.IsZero() {
			divisor = ref.Divisor
		}
		// As the kubelet does: the quantity over the divisor, rounded up.
		return fmt.Sprint(int64(math.Ceil(float64(q.MilliValue()) / float64(divisor.MilliValue()))))
	}
	t.Fatalf("env %s: unsupported source %+v", e.Name, e.ValueFrom)
	return ""
}

// removeWebhookConfigurations deletes the applied webhook configurations (they call the
// Service, which has no Pods in a test control plane).
func removeWebhookConfigurations(t *testing.T) {
	if out, ok := h.KubectlText("", "delete", "validatingwebhookconfiguration,mutatingwebhookconfiguration", "rrguard"); !ok {
		t.Fatal(out)
	}
}
