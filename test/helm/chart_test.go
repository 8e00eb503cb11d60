//go:build e2e

package helm

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// TestLint: helm lint --strict finds nothing, with the defaults and with every optional part on.
func TestLint(t *testing.T) {
	for _, args := range [][]string{nil, {"--set", "controller.enabled=true,serviceMonitor.enabled=true,certificates.mode=certManager"}} {
		r := runHelm(t, append([]string{"lint", "--strict", chartDir}, args...)...)
		if r.err != nil || !strings.Contains(r.stdout, "1 chart(s) linted, 0 chart(s) failed") {
			t.Errorf("helm lint --strict %v: %v\n%s", args, r.err, r.stdout)
		}
	}
	if helmBinary.took > 0 {
		t.Logf("built helm %s in %v", helmVersion, helmBinary.took.Round(1e9))
	}
}

// kustomizeHash is the suffix kustomize's configMapGenerator gives a ConfigMap's name.
var kustomizeHash = regexp.MustCompile(`^(rrguard-(?:config|policies))-[a-z0-9]{10}$`)

// comparable turns a rendered object into what must be the same in both renderings: the chart's
// Helm labels, its checksum annotation (kustomize rolls the Deployment by hashed ConfigMap names
// instead) and those hashes go; rrguard.yaml is compared as the YAML it is, not as text. It
// returns the object's labels apart.
func comparable(t *testing.T, o *unstructured.Unstructured, hashed map[string]string) (map[string]any, map[string]string) {
	t.Helper()
	raw, err := yaml.Marshal(o.Object)
	if err != nil {
		t.Fatal(err)
	}
	text := string(raw)
	for from, to := range hashed {
		text = strings.ReplaceAll(text, from, to)
	}
	var obj map[string]any
	if err := yaml.Unmarshal([]byte(text), &obj); err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{Object: obj}
	labels := u.GetLabels()
	unstructured.RemoveNestedField(obj, "metadata", "labels")
	unstructured.RemoveNestedField(obj, "spec", "template", "metadata", "annotations", "checksum/config")
	if a, _, _ := unstructured.NestedMap(obj, "spec", "template", "metadata", "annotations"); len(a) == 0 {
		unstructured.RemoveNestedField(obj, "spec", "template", "metadata", "annotations")
	}
	if u.GetKind() == "ConfigMap" {
		if cfg, ok, _ := unstructured.NestedString(obj, "data", "rrguard.yaml"); ok {
			var parsed map[string]any
			if err := yaml.Unmarshal([]byte(cfg), &parsed); err != nil {
				t.Fatalf("ConfigMap %s: rrguard.yaml: %v", u.GetName(), err)
			}
			obj["data"].(map[string]any)["rrguard.yaml"] = parsed
		}
	}
	return obj, labels
}

// sameObjects fails unless the chart renders exactly kustomize's objects (less the Namespace,
// which `helm install --create-namespace` makes), each the same but for what comparable drops,
// and labels each at least kustomize's.
func sameObjects(t *testing.T, chart, kust []*unstructured.Unstructured) {
	t.Helper()
	hashed := map[string]string{}
	for _, o := range kust {
		if m := kustomizeHash.FindStringSubmatch(o.GetName()); o.GetKind() == "ConfigMap" && m != nil {
			hashed[o.GetName()] = m[1]
		}
	}
	key := func(o *unstructured.Unstructured) string {
		name := o.GetName()
		if to, ok := hashed[name]; ok {
			name = to
		}
		return o.GetKind() + " " + o.GetNamespace() + "/" + name
	}
	want := map[string]*unstructured.Unstructured{}
	for _, o := range kust {
		if o.GetKind() != "Namespace" {
			want[key(o)] = o
		}
	}
	got := map[string]*unstructured.Unstructured{}
	for _, o := range chart {
		got[key(o)] = o
	}
	if g, w := slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)); !slices.Equal(g, w) {
		t.Fatalf("the chart renders\n  %s\nkustomize\n  %s", strings.Join(g, "\n  "), strings.Join(w, "\n  "))
	}
	for k, w := range want {
		wantObj, wantLabels := comparable(t, w, hashed)
		gotObj, gotLabels := comparable(t, got[k], hashed)
		if w.GetKind() != "CustomResourceDefinition" { // crds/ are not templated: no labels
			for l, v := range wantLabels {
				if gotLabels[l] != v {
					t.Errorf("%s: label %s=%q, kustomize's is %q", k, l, gotLabels[l], v)
				}
			}
		}
		if !reflect.DeepEqual(gotObj, wantObj) {
			g, _ := yaml.Marshal(gotObj)
			w, _ := yaml.Marshal(wantObj)
			t.Errorf("%s differs:\n--- chart\n%s\n--- kustomize\n%s", k, g, w)
		}
	}
}

// TestChartIsConfigWebhook: with cert-manager in the cluster, the chart's defaults render the
// objects of config/webhook, field for field: webhook rules and match conditions, failure
// policies, RBAC, the Deployment's arguments, probes and security contexts, the certificates,
// the PDB, the quota, the report CRD. So do the controller and the reflector-nodes components
// against their values.
func TestChartIsConfigWebhook(t *testing.T) {
	certManager := []string{"--api-versions", "cert-manager.io/v1"}
	t.Run("defaults", func(t *testing.T) {
		sameObjects(t, template(t, certManager...), kustomize(t))
	})
	t.Run("controller", func(t *testing.T) {
		sameObjects(t, template(t, append(certManager, "--set", "controller.enabled=true")...), kustomize(t, "controller"))
	})
	t.Run("reflector-nodes", func(t *testing.T) {
		sameObjects(t, template(t, append(certManager, "--set-json", `tolerations=[{"key":"route-reflector","operator":"Exists","effect":"NoSchedule"}]`)...), kustomize(t, "reflector-nodes"))
	})
}

// webhooks returns each webhook of the rendered configurations by name.
func webhooks(t *testing.T, objs []*unstructured.Unstructured) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		hooks, _, _ := unstructured.NestedSlice(find(t, objs, kind, "rrguard").Object, "webhooks")
		for _, wh := range hooks {
			m := wh.(map[string]any)
			out[m["name"].(string)] = m
		}
	}
	return out
}

// TestGeneratedCertificates: without cert-manager the chart makes a CA and a serving
// certificate for the webhooks' Service, puts them in the Secret the Deployment mounts, and
// the CA into every webhook; kustomize's objects are otherwise unchanged.
func TestGeneratedCertificates(t *testing.T) {
	objs := template(t)
	if has(objs, "Certificate", "rrguard-serving-cert") || has(objs, "Issuer", "rrguard-ca") {
		t.Error("cert-manager objects rendered for a cluster without cert-manager")
	}
	secret := find(t, objs, "Secret", "rrguard-webhook-tls")
	data := map[string][]byte{}
	for _, k := range []string{"tls.crt", "tls.key", "ca.crt"} {
		s, _, _ := unstructured.NestedString(secret.Object, "data", k)
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil || len(b) == 0 {
			t.Fatalf("Secret rrguard-webhook-tls: %s: %v", k, err)
		}
		data[k] = b
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data["ca.crt"]) {
		t.Fatal("ca.crt holds no certificate")
	}
	block, _ := pem.Decode(data["tls.crt"])
	if block == nil {
		t.Fatal("tls.crt holds no PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	for _, dns := range []string{"rrguard-webhook." + namespace + ".svc", "rrguard-webhook." + namespace + ".svc.cluster.local"} {
		if _, err := cert.Verify(x509.VerifyOptions{DNSName: dns, Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Errorf("the serving certificate does not verify for %s against ca.crt: %v", dns, err)
		}
	}
	for name, wh := range webhooks(t, objs) {
		bundle, _, _ := unstructured.NestedString(wh, "clientConfig", "caBundle")
		if got, _ := base64.StdEncoding.DecodeString(bundle); string(got) != string(data["ca.crt"]) {
			t.Errorf("webhook %s: caBundle is not the generated CA", name)
		}
	}
	for _, kind := range []string{"MutatingWebhookConfiguration", "ValidatingWebhookConfiguration"} {
		if a := find(t, objs, kind, "rrguard").GetAnnotations(); len(a) > 0 {
			t.Errorf("%s rrguard: annotations %v: nothing to inject without cert-manager", kind, a)
		}
	}
}

// TestValues: each value does what values.yaml says, and a wrong one is refused by name.
func TestValues(t *testing.T) {
	t.Run("failurePolicy per kind", func(t *testing.T) {
		hooks := webhooks(t, template(t, "--set", "failurePolicy.nodes=Fail,failurePolicy.bgp=Ignore,failurePolicy.ippools=Ignore"))
		want := map[string]string{"nodes.mutate.rrguard.io": "Fail", "nodes.validate.rrguard.io": "Fail", "bgp.validate.rrguard.io": "Ignore", "ippools.validate.rrguard.io": "Ignore"}
		for name, policy := range want {
			if got := hooks[name]["failurePolicy"]; got != policy {
				t.Errorf("webhook %s: failurePolicy %v, want %s", name, got, policy)
			}
		}
	})
	t.Run("image, replicas, resources", func(t *testing.T) {
		d := find(t, template(t, "--set", "image.repository=registry.example/rrguard,image.tag=v9.9.9,image.pullPolicy=IfNotPresent,replicas=3,resources.limits.memory=1Gi"), "Deployment", "rrguard-webhook")
		c := container(t, d)
		if c["image"] != "registry.example/rrguard:v9.9.9" || c["imagePullPolicy"] != "IfNotPresent" {
			t.Errorf("image %v (%v)", c["image"], c["imagePullPolicy"])
		}
		if r, _, _ := unstructured.NestedFieldNoCopy(d.Object, "spec", "replicas"); r != float64(3) {
			t.Errorf("replicas %v", r)
		}
		if m, _, _ := unstructured.NestedString(c, "resources", "limits", "memory"); m != "1Gi" {
			t.Errorf("memory limit %q", m)
		}
	})
	t.Run("rrguard.yaml and policies roll the Deployment", func(t *testing.T) {
		base := template(t)
		changed := template(t, "--set", "config.minReflectors=3", "--set-string", "policies.site\\.rego=package rrguard.policies[\"site\"]")
		cfg, _, _ := unstructured.NestedString(find(t, changed, "ConfigMap", "rrguard-config").Object, "data", "rrguard.yaml")
		if !strings.Contains(cfg, "minReflectors: 3") {
			t.Errorf("rrguard.yaml:\n%s", cfg)
		}
		if p, _, _ := unstructured.NestedString(find(t, changed, "ConfigMap", "rrguard-policies").Object, "data", "site.rego"); !strings.Contains(p, `rrguard.policies["site"]`) {
			t.Errorf("policy site.rego: %q", p)
		}
		sum := func(objs []*unstructured.Unstructured) string {
			s, _, _ := unstructured.NestedString(find(t, objs, "Deployment", "rrguard-webhook").Object, "spec", "template", "metadata", "annotations", "checksum/config")
			return s
		}
		if sum(base) == "" || sum(base) == sum(changed) {
			t.Errorf("checksum/config %q before, %q after: a changed configuration must roll the Deployment", sum(base), sum(changed))
		}
	})
	t.Run("PDB off", func(t *testing.T) {
		if has(template(t, "--set", "podDisruptionBudget.enabled=false"), "PodDisruptionBudget", "rrguard-webhook") {
			t.Error("PDB rendered with podDisruptionBudget.enabled=false")
		}
	})
	t.Run("ServiceMonitor", func(t *testing.T) {
		objs := template(t, "--set", "serviceMonitor.enabled=true,serviceMonitor.labels.release=prometheus")
		sm := find(t, objs, "ServiceMonitor", "rrguard")
		svc := find(t, objs, "Service", "rrguard-metrics")
		sel, _, _ := unstructured.NestedStringMap(sm.Object, "spec", "selector", "matchLabels")
		for k, v := range sel {
			if svc.GetLabels()[k] != v {
				t.Errorf("the ServiceMonitor selects %s=%s; Service rrguard-metrics has %q", k, v, svc.GetLabels()[k])
			}
		}
		if sm.GetLabels()["release"] != "prometheus" {
			t.Errorf("ServiceMonitor labels %v", sm.GetLabels())
		}
		podSel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
		pods, _, _ := unstructured.NestedStringMap(find(t, objs, "Deployment", "rrguard-webhook").Object, "spec", "template", "metadata", "labels")
		for k, v := range podSel {
			if pods[k] != v {
				t.Errorf("Service rrguard-metrics selects %s=%s, the webhook's pods have %q", k, v, pods[k])
			}
		}
		eps, _, _ := unstructured.NestedSlice(sm.Object, "spec", "endpoints")
		ports, _, _ := unstructured.NestedSlice(svc.Object, "spec", "ports")
		if len(eps) != 1 || len(ports) != 1 || eps[0].(map[string]any)["port"] != ports[0].(map[string]any)["name"] || ports[0].(map[string]any)["targetPort"] != "metrics" {
			t.Errorf("ServiceMonitor endpoints %v, Service ports %v", eps, ports)
		}
	})
	t.Run("controller off, then dry run first", func(t *testing.T) {
		if has(template(t), "Deployment", "rrguard-controller") {
			t.Error("the controller is on by default")
		}
		args := func(extra ...string) []any {
			d := find(t, template(t, append([]string{"--set", "controller.enabled=true"}, extra...)...), "Deployment", "rrguard-controller")
			a, _, _ := unstructured.NestedSlice(container(t, d), "args")
			return a
		}
		if !slices.Contains(args(), "--dry-run") {
			t.Error("controller.enabled=true without --dry-run: it must start in dry run")
		}
		if a := args("--set", "controller.dryRun=false,controller.reflectorsPerZone=3"); slices.Contains(a, "--dry-run") || !slices.Contains(a, any("--reflectors-per-zone=3")) {
			t.Errorf("controller.dryRun=false, reflectorsPerZone=3: args %v", a)
		}
	})
	t.Run("certificates from a Secret of yours", func(t *testing.T) {
		if r := runHelm(t, "template", release, chartDir, "--set", "certificates.mode=secret"); r.err == nil || !strings.Contains(r.stderr, "certificates.caBundle") {
			t.Errorf("mode secret without caBundle: %v", r.err)
		}
		objs := template(t, "--set", "certificates.mode=secret,certificates.caBundle=MY-CA")
		if has(objs, "Secret", "rrguard-webhook-tls") {
			t.Error("mode secret renders the Secret the user makes")
		}
		for name, wh := range webhooks(t, objs) {
			if b, _, _ := unstructured.NestedString(wh, "clientConfig", "caBundle"); b != base64.StdEncoding.EncodeToString([]byte("MY-CA")) {
				t.Errorf("webhook %s: caBundle %q", name, b)
			}
		}
	})
	for _, bad := range []struct{ set, names string }{
		{"failurePolicy.bgp=fail", "failurePolicy"},
		{"certificates.mode=cert-manager", "certificates"},
		{"replica=3", "replica"},
		{"config.clusterIDPolicy=sometimes", "clusterIDPolicy"},
	} {
		t.Run("refused: "+bad.set, func(t *testing.T) {
			r := runHelm(t, "template", release, chartDir, "--set", bad.set)
			if r.err == nil || !strings.Contains(r.stderr, bad.names) {
				t.Errorf("--set %s: %v, want refused naming %s", bad.set, r.err, bad.names)
			}
		})
	}
}

func container(t *testing.T, d *unstructured.Unstructured) map[string]any {
	t.Helper()
	cs, _, _ := unstructured.NestedSlice(d.Object, "spec", "template", "spec", "containers")
	if len(cs) != 1 {
		t.Fatalf("Deployment %s: %d containers", d.GetName(), len(cs))
	}
	return cs[0].(map[string]any)
}
