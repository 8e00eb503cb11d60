//go:build e2e

package deploy

import (
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/rrguard/rrguard/pkg/validate"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// typed converts a rendered object into its Go type, refusing fields the type does not have.
func typed[T any](t *testing.T, u *unstructured.Unstructured) *T {
	t.Helper()
	out := new(T)
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, out, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return out
}

func renderedDeployment(t *testing.T, objs []*unstructured.Unstructured) (*appsv1.Deployment, *corev1.Container) {
	t.Helper()
	d := typed[appsv1.Deployment](t, find(t, objs, "Deployment", deployment))
	for i := range d.Spec.Template.Spec.Containers {
		if c := &d.Spec.Template.Spec.Containers[i]; c.Name == container {
			return d, c
		}
	}
	t.Fatalf("Deployment %s has no container %q", deployment, container)
	return nil, nil
}

// flagValue returns the value of --name=value in args ("" and false when absent).
func flagValue(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// mountOf returns the volume mounted at exactly path.
func mountOf(t *testing.T, d *appsv1.Deployment, c *corev1.Container, path string) corev1.Volume {
	t.Helper()
	for _, m := range c.VolumeMounts {
		if filepath.Clean(m.MountPath) == filepath.Clean(path) {
			for _, v := range d.Spec.Template.Spec.Volumes {
				if v.Name == m.Name {
					return v
				}
			}
		}
	}
	t.Fatalf("nothing is mounted at %s in container %s", path, c.Name)
	return corev1.Volume{}
}

// TestKustomizeRendersTheTestedWebhookConfigurations: the webhook configurations a user
// installs are those of config/webhook/webhooks.yaml, which test/admission runs against the
// API server, not a second copy: kustomize changes nothing in them but labels.
func TestKustomizeRendersTheTestedWebhookConfigurations(t *testing.T) {
	objs := render(t, "config/webhook")
	raw, err := os.ReadFile(filepath.Join(h.RootDir, "config", "webhook", "webhooks.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	tested, err := decodeYAML(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := kinds(objs)["MutatingWebhookConfiguration"]+kinds(objs)["ValidatingWebhookConfiguration"], len(tested); got != want {
		t.Fatalf("rendered %d webhook configurations, webhooks.yaml has %d", got, want)
	}
	for _, want := range tested {
		got := find(t, objs, want.GetKind(), want.GetName())
		if !reflect.DeepEqual(got.Object["webhooks"], want.Object["webhooks"]) {
			g, _ := yaml.Marshal(got.Object["webhooks"])
			w, _ := yaml.Marshal(want.Object["webhooks"])
			t.Errorf("%s %s: kustomize changed the webhooks (folded >- scalars are re-rendered; use |-):\n--- rendered\n%s\n--- webhooks.yaml\n%s", want.GetKind(), want.GetName(), g, w)
		}
		if !reflect.DeepEqual(got.GetAnnotations(), want.GetAnnotations()) {
			t.Errorf("%s %s: annotations %v, webhooks.yaml has %v", want.GetKind(), want.GetName(), got.GetAnnotations(), want.GetAnnotations())
		}
	}
}

// TestServingCertificate: decoded with cert-manager's own API types, the Certificate covers
// the Service the webhooks call, its Secret is what the Deployment mounts at --cert-dir, the
// CA injection names it, and its issuer chain is a self-signed CA.
func TestServingCertificate(t *testing.T) {
	objs := render(t, "config/webhook")
	certs := map[string]*cmapi.Certificate{}
	issuers := map[string]*cmapi.Issuer{}
	for _, o := range objs {
		switch o.GetKind() {
		case "Certificate":
			certs[o.GetName()] = typed[cmapi.Certificate](t, o)
		case "Issuer":
			issuers[o.GetName()] = typed[cmapi.Issuer](t, o)
		case "ClusterIssuer":
			t.Errorf("ClusterIssuer %s: rrguard's certificates must not depend on cluster-wide issuers", o.GetName())
		}
	}

	// The webhooks call one Service; its DNS names are what the certificate must cover.
	var svcRefs []string
	injected := map[string]bool{}
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		o := find(t, objs, kind, "rrguard")
		injected[o.GetAnnotations()[cmapi.WantInjectAnnotation]] = true
		var hooks []admissionregistrationv1.ValidatingWebhook // clientConfig is the same type in both
		raw, _ := yaml.Marshal(o.Object["webhooks"])
		if err := yaml.Unmarshal(raw, &hooks); err != nil {
			t.Fatal(err)
		}
		for _, wh := range hooks {
			s := wh.ClientConfig.Service
			if s == nil || wh.ClientConfig.URL != nil {
				t.Fatalf("%s webhook %s does not call a Service", kind, wh.Name)
			}
			svcRefs = append(svcRefs, fmt.Sprintf("%s/%s:%d", s.Namespace, s.Name, *s.Port))
		}
	}
	svcRefs = slices.Compact(svcRefs)
	if len(svcRefs) != 1 {
		t.Fatalf("the webhooks call %v, want one Service", svcRefs)
	}
	svc := typed[corev1.Service](t, find(t, objs, "Service", ""))
	if want := fmt.Sprintf("%s/%s:443", svc.Namespace, svc.Name); svcRefs[0] != want {
		t.Fatalf("the webhooks call %s, the Service is %s", svcRefs[0], want)
	}
	if len(injected) != 1 {
		t.Fatalf("the webhook configurations inject CAs from %v, want one Certificate", injected)
	}
	var ref string
	for ref = range injected {
	}
	ns, name, _ := strings.Cut(ref, "/")
	serving, ok := certs[name]
	if !ok || ns != serving.Namespace {
		t.Fatalf("annotation %s: %q names no Certificate of config/webhook", cmapi.WantInjectAnnotation, ref)
	}
	wantDNS := []string{svc.Name + "." + svc.Namespace + ".svc", svc.Name + "." + svc.Namespace + ".svc.cluster.local"}
	if got := slices.Sorted(slices.Values(serving.Spec.DNSNames)); !slices.Equal(got, wantDNS) {
		t.Errorf("Certificate %s: dnsNames %v, want the Service's %v", serving.Name, got, wantDNS)
	}
	if serving.Spec.IsCA {
		t.Errorf("Certificate %s: the serving certificate must not be a CA", serving.Name)
	}

	d, c := renderedDeployment(t, objs)
	certDir, ok := flagValue(c.Args, "cert-dir")
	if !ok {
		t.Fatal("the webhook container has no --cert-dir")
	}
	v := mountOf(t, d, c, certDir)
	if v.Secret == nil || v.Secret.SecretName != serving.Spec.SecretName {
		t.Errorf("--cert-dir %s mounts %+v, want Secret %s of Certificate %s", certDir, v.VolumeSource, serving.Spec.SecretName, serving.Name)
	}

	// The chain: serving ← CA Issuer ← CA Certificate ← self-signed Issuer, all namespaced here.
	caIssuer, ok := issuers[serving.Spec.IssuerRef.Name]
	if !ok || serving.Spec.IssuerRef.Kind != "Issuer" || caIssuer.Spec.CA == nil {
		t.Fatalf("Certificate %s is issued by %+v, want a CA Issuer of config/webhook", serving.Name, serving.Spec.IssuerRef)
	}
	var ca *cmapi.Certificate
	for _, c := range certs {
		if c.Spec.SecretName == caIssuer.Spec.CA.SecretName {
			ca = c
		}
	}
	if ca == nil || !ca.Spec.IsCA {
		t.Fatalf("Issuer %s signs with Secret %s, which no CA Certificate of config/webhook writes", caIssuer.Name, caIssuer.Spec.CA.SecretName)
	}
	root, ok := issuers[ca.Spec.IssuerRef.Name]
	if !ok || ca.Spec.IssuerRef.Kind != "Issuer" || root.Spec.SelfSigned == nil {
		t.Fatalf("CA Certificate %s is issued by %+v, want the self-signed Issuer", ca.Name, ca.Spec.IssuerRef)
	}
	if serving.Spec.Duration != nil && ca.Spec.Duration != nil && ca.Spec.Duration.Duration <= serving.Spec.Duration.Duration {
		t.Errorf("the CA (%v) must outlive the serving certificate (%v), or the CA bundle changes with every renewal", ca.Spec.Duration.Duration, serving.Spec.Duration.Duration)
	}
	for _, o := range []interface{ GetNamespace() string }{serving, ca, caIssuer, root} {
		if o.GetNamespace() != namespace {
			t.Errorf("cert-manager object in namespace %q, want %s", o.GetNamespace(), namespace)
		}
	}
}

// TestDeploymentShape: replicas, spreading, disruption budget, priority, probes on the probe
// address, resources, the runtime's limits, and a locked-down security context.
func TestDeploymentShape(t *testing.T) {
	objs := render(t, "config/webhook")
	d, c := renderedDeployment(t, objs)
	spec := d.Spec.Template.Spec
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas %v, want 2 or more", d.Spec.Replicas)
	}
	if a := spec.Affinity; a == nil || a.PodAntiAffinity == nil || len(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution)+len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) == 0 {
		t.Error("no pod anti-affinity: both replicas may land on one node")
	} else {
		for _, term := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			if term.PodAffinityTerm.TopologyKey != "kubernetes.io/hostname" || !reflect.DeepEqual(term.PodAffinityTerm.LabelSelector.MatchLabels, d.Spec.Selector.MatchLabels) {
				t.Errorf("anti-affinity term %+v does not spread the Deployment's pods over hosts", term.PodAffinityTerm)
			}
		}
	}
	pdb := typed[policyv1.PodDisruptionBudget](t, find(t, objs, "PodDisruptionBudget", ""))
	if !reflect.DeepEqual(pdb.Spec.Selector.MatchLabels, d.Spec.Selector.MatchLabels) || pdb.Spec.MinAvailable == nil || pdb.Spec.MinAvailable.IntValue() < 1 {
		t.Errorf("PodDisruptionBudget %+v does not keep one of the Deployment's pods", pdb.Spec)
	}
	if ru := d.Spec.Strategy.RollingUpdate; ru == nil || ru.MaxUnavailable == nil || ru.MaxUnavailable.IntValue() != 0 {
		t.Error("a rolling update may take a replica away before its successor is ready: want maxUnavailable 0")
	}
	if spec.PriorityClassName != "system-cluster-critical" {
		t.Errorf("priorityClassName %q", spec.PriorityClassName)
	}
	if spec.ServiceAccountName != serviceAccount {
		t.Errorf("serviceAccountName %q, want %s (the one the ClusterRole is bound to)", spec.ServiceAccountName, serviceAccount)
	}

	// The Service reaches the webhook port; the probes ask the probe address.
	svc := typed[corev1.Service](t, find(t, objs, "Service", ""))
	if !reflect.DeepEqual(svc.Spec.Selector, d.Spec.Selector.MatchLabels) {
		t.Errorf("Service selects %v, the Deployment's pods are %v", svc.Spec.Selector, d.Spec.Selector.MatchLabels)
	}
	port := func(p intstr.IntOrString) int32 {
		if p.Type == intstr.Int {
			return p.IntVal
		}
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				return cp.ContainerPort
			}
		}
		t.Fatalf("port %q is not a port of container %s", p.StrVal, c.Name)
		return 0
	}
	webhookPort := "9443"
	if v, ok := flagValue(c.Args, "port"); ok {
		webhookPort = v
	}
	if got := fmt.Sprint(port(svc.Spec.Ports[0].TargetPort)); len(svc.Spec.Ports) != 1 || got != webhookPort {
		t.Errorf("Service targets port %s, the webhook listens on %s", got, webhookPort)
	}
	probeAddr, _ := flagValue(c.Args, "health-probe-bind-address")
	for name, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("no HTTP %s probe", name)
			continue
		}
		if got := fmt.Sprintf(":%d", port(p.HTTPGet.Port)); got != probeAddr {
			t.Errorf("%s probe asks port %s, --health-probe-bind-address is %q", name, got, probeAddr)
		}
	}
	if c.ReadinessProbe != nil && c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.LivenessProbe != nil && c.LivenessProbe.HTTPGet.Path != "/healthz" {
		t.Error("readiness must ask /readyz (caches synced) and liveness /healthz")
	}

	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request", r)
		}
		if _, ok := c.Resources.Limits[r]; !ok {
			t.Errorf("no %s limit", r)
		}
	}
	envFrom := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil {
			envFrom[e.Name] = e.ValueFrom.ResourceFieldRef.ContainerName + "/" + e.ValueFrom.ResourceFieldRef.Resource
		}
	}
	if envFrom["GOMAXPROCS"] != container+"/limits.cpu" || envFrom["GOMEMLIMIT"] != container+"/limits.memory" {
		t.Errorf("GOMAXPROCS and GOMEMLIMIT must come from the container's limits, have %v", envFrom)
	}

	psc, sc := spec.SecurityContext, c.SecurityContext
	switch {
	case psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot:
		t.Error("runAsNonRoot not set")
	case psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("seccomp profile not RuntimeDefault")
	case sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("root filesystem not read-only")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("privilege escalation allowed")
	case sc.Capabilities == nil || !reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("capabilities %+v, want all dropped", sc.Capabilities)
	}
}

// TestShippedConfiguration: the rrguard.yaml in the ConfigMap the Deployment mounts at
// --config is one the engine accepts; --policy-dir is the policies ConfigMap.
func TestShippedConfiguration(t *testing.T) {
	objs := render(t, "config/webhook")
	d, c := renderedDeployment(t, objs)
	path, ok := flagValue(c.Args, "config")
	if !ok {
		t.Fatal("no --config")
	}
	v := mountOf(t, d, c, filepath.Dir(path))
	if v.ConfigMap == nil {
		t.Fatalf("--config %s is not in a ConfigMap volume", path)
	}
	cm := typed[corev1.ConfigMap](t, find(t, objs, "ConfigMap", v.ConfigMap.Name))
	data, ok := cm.Data[filepath.Base(path)]
	if !ok {
		t.Fatalf("ConfigMap %s has no %s", cm.Name, filepath.Base(path))
	}
	file := filepath.Join(t.TempDir(), "rrguard.yaml")
	if err := os.WriteFile(file, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := validate.LoadConfig(file); err != nil {
		t.Fatalf("the shipped rrguard.yaml: %v", err)
	}
	dir, ok := flagValue(c.Args, "policy-dir")
	if !ok {
		t.Fatal("no --policy-dir")
	}
	if v := mountOf(t, d, c, dir); v.ConfigMap == nil {
		t.Errorf("--policy-dir %s is not a ConfigMap volume", dir)
	}
}

// permission is one thing RBAC lets a subject do.
type permission struct{ group, resource, verb string }

// TestClusterRoleIsExactlyWhatRrguardUses: the ClusterRole grants nothing beyond this list
// (test/deploy's install test shows each of these is needed and enough). A new permission must
// be added here, with the reason.
func TestClusterRoleIsExactlyWhatRrguardUses(t *testing.T) {
	want := map[permission]bool{}
	add := func(groups, resources, verbs []string) {
		for _, g := range groups {
			for _, r := range resources {
				for _, v := range verbs {
					want[permission{g, r, v}] = true
				}
			}
		}
	}
	read := []string{"get", "list", "watch"}
	write := []string{"get", "list", "watch", "create", "update", "patch"}
	add([]string{""}, []string{"nodes"}, read)                                                                                                               // the model
	add([]string{"crd.projectcalico.org", "projectcalico.org"}, []string{"bgppeers", "bgpconfigurations", "bgpfilters", "ippools", "blockaffinities"}, read) // the model
	add([]string{"openreports.io"}, []string{"clusterreports"}, write)                                                                                       // audit report (default)
	add([]string{"wgpolicyk8s.io"}, []string{"clusterpolicyreports"}, write)                                                                                 // audit report (--report-api=wgpolicy)
	add([]string{"", "events.k8s.io"}, []string{"events"}, []string{"create", "patch"})                                                                      // audit and leader-election Events

	objs := render(t, "config/webhook")
	roles := 0
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" {
			continue
		}
		roles++
		role := typed[rbacv1.ClusterRole](t, o)
		got := map[permission]bool{}
		for _, r := range role.Rules {
			if len(r.ResourceNames) > 0 || len(r.NonResourceURLs) > 0 {
				t.Errorf("ClusterRole %s: unexpected rule %+v", role.Name, r)
			}
			for _, g := range r.APIGroups {
				for _, res := range r.Resources {
					for _, v := range r.Verbs {
						got[permission{g, res, v}] = true
					}
				}
			}
		}
		var extra, missing []string
		for p := range got {
			if !want[p] {
				extra = append(extra, fmt.Sprintf("%s %s.%s", p.verb, p.resource, p.group))
			}
		}
		for p := range want {
			if !got[p] {
				missing = append(missing, fmt.Sprintf("%s %s.%s", p.verb, p.resource, p.group))
			}
		}
		sort.Strings(extra)
		sort.Strings(missing)
		if len(extra) > 0 || len(missing) > 0 {
			t.Errorf("ClusterRole %s grants more than rrguard uses: %v; lacks: %v", role.Name, extra, missing)
		}
	}
	if roles != 1 {
		t.Errorf("%d ClusterRoles, want 1", roles)
	}
	role := typed[rbacv1.Role](t, find(t, objs, "Role", ""))
	if role.Namespace != namespace || len(role.Rules) != 1 || !reflect.DeepEqual(role.Rules[0].APIGroups, []string{"coordination.k8s.io"}) || !reflect.DeepEqual(role.Rules[0].Resources, []string{"leases"}) {
		t.Errorf("the namespaced Role must grant Leases in %s only, for leader election: %+v", namespace, role)
	}
}

// TestReportCRDIsTheModules: config/crd/openreports holds the OpenReports module's CRD as
// released (the version go.mod requires), not an edited copy.
func TestReportCRDIsTheModules(t *testing.T) {
	const file = "openreports.io_clusterreports.yaml"
	want, err := os.ReadFile(filepath.Join(moduleDir(t, "github.com/openreports/reports-api"), "config", "crd", file))
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(filepath.Join(h.RootDir, "config", "crd", "openreports", file))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("config/crd/openreports/%s differs from github.com/openreports/reports-api's: copy it again", file)
	}
	objs := render(t, "config/webhook")
	if crd := find(t, objs, "CustomResourceDefinition", "clusterreports.openreports.io"); crd == nil {
		t.Fatal("config/webhook does not install the ClusterReport CRD")
	}
}

// TestOverlayComponents: the components docs/install.md offers render as it says.
func TestOverlayComponents(t *testing.T) {
	t.Run("reflector-nodes", func(t *testing.T) {
		objs := renderOverlay(t, "resources: [../config/webhook]\ncomponents: [../config/components/reflector-nodes]\n", nil)
		d, _ := renderedDeployment(t, objs)
		if tol := d.Spec.Template.Spec.Tolerations; len(tol) != 1 || tol[0].Key != "route-reflector" || tol[0].Operator != corev1.TolerationOpExists {
			t.Errorf("tolerations %+v, want the route-reflector taint tolerated", tol)
		}
	})
	t.Run("controller", func(t *testing.T) {
		objs := renderOverlay(t, "resources: [../config/webhook]\ncomponents: [../config/components/controller]\n", nil)
		d := find(t, objs, "Deployment", "rrguard-controller")
		if d == nil {
			t.Fatal("no rrguard-controller Deployment")
		}
		containers, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
		c, _ := containers[0].(map[string]interface{})
		if cmd, _, _ := unstructured.NestedStringSlice(c, "command"); strings.Join(cmd, " ") != "/rrguard controller" {
			t.Errorf("the controller runs %v", cmd)
		}
		if sa, _, _ := unstructured.NestedString(d.Object, "spec", "template", "spec", "serviceAccountName"); sa != "rrguard-controller" {
			t.Errorf("the controller runs as %q, want its own ServiceAccount", sa)
		}
		// The webhook's RBAC stays read-only on what the controller writes.
		role := find(t, objs, "ClusterRole", "rrguard-webhook")
		rules, _, _ := unstructured.NestedSlice(role.Object, "rules")
		for _, r := range rules {
			m, _ := r.(map[string]interface{})
			res, _, _ := unstructured.NestedStringSlice(m, "resources")
			verbs, _, _ := unstructured.NestedStringSlice(m, "verbs")
			for _, x := range res {
				if x == "nodes" || x == "bgppeers" || x == "bgpconfigurations" || x == "bgpfilters" || x == "ippools" || x == "blockaffinities" {
					if strings.Join(verbs, ",") != "get,list,watch" {
						t.Errorf("the webhook may %v %s", verbs, x)
					}
				}
			}
		}
	})
	t.Run("without-cert-manager", func(t *testing.T) {
		objs := renderOverlay(t, "resources: [../config/webhook]\ncomponents: [../config/components/without-cert-manager]\n", nil)
		for _, o := range objs {
			if strings.HasSuffix(o.GetAPIVersion(), "cert-manager.io/v1") {
				t.Errorf("%s %s left in", o.GetKind(), o.GetName())
			}
			if _, ok := o.GetAnnotations()[cmapi.WantInjectAnnotation]; ok {
				t.Errorf("%s %s still asks cert-manager for its CA", o.GetKind(), o.GetName())
			}
		}
		if k := kinds(objs); k["Deployment"] != 1 || k["ValidatingWebhookConfiguration"] != 1 || k["MutatingWebhookConfiguration"] != 1 {
			t.Errorf("the component removed more than cert-manager's objects: %v", k)
		}
	})
}

// TestInstallDocOverlays: the overlays docs/install.md shows (```yaml blocks that start with
// "# overlay/kustomization.yaml") render, with the files they name, and do what the page says.
func TestInstallDocOverlays(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join(h.RootDir, "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	var overlays []string
	for _, block := range strings.Split(string(raw), "```yaml\n")[1:] {
		block, _, _ = strings.Cut(block, "```")
		if strings.HasPrefix(block, "# overlay/kustomization.yaml\n") {
			overlays = append(overlays, block)
		}
	}
	if len(overlays) != 2 {
		t.Fatalf("docs/install.md shows %d overlays, the test knows 2 (customize, without cert-manager)", len(overlays))
	}
	policy, err := os.ReadFile(filepath.Join(h.RootDir, "policies", "reflector-per-zone.rego"))
	if err != nil {
		t.Fatal(err)
	}
	objs := renderOverlay(t, overlays[0], map[string]string{"rrguard.yaml": "minReflectors: 3\n", "policies/zone.rego": string(policy)})
	d, c := renderedDeployment(t, objs)
	if c.Image != "registry.example.com/rrguard:v0.1.0" {
		t.Errorf("image %s, want the overlay's", c.Image)
	}
	if len(d.Spec.Template.Spec.Tolerations) != 1 {
		t.Errorf("tolerations %v, want the reflector-nodes component's", d.Spec.Template.Spec.Tolerations)
	}
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.ConfigMap == nil {
			continue
		}
		cm := typed[corev1.ConfigMap](t, find(t, objs, "ConfigMap", v.ConfigMap.Name))
		switch v.Name {
		case "config":
			if cm.Data["rrguard.yaml"] != "minReflectors: 3\n" {
				t.Errorf("rrguard.yaml %q, want the overlay's", cm.Data["rrguard.yaml"])
			}
		case "policies":
			if cm.Data["zone.rego"] != string(policy) {
				t.Errorf("policies ConfigMap %v, want zone.rego", cm.Data)
			}
		}
	}
	objs = renderOverlay(t, overlays[1], nil)
	if k := kinds(objs); k["Certificate"]+k["Issuer"] != 0 {
		t.Errorf("the without-cert-manager overlay keeps cert-manager objects: %v", k)
	}
}
