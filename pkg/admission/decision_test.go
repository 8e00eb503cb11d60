package admission

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/validate"
	"github.com/rrguard/rrguard/pkg/validate/validatetest"
	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var configKind = metav1.GroupVersionKind{Group: calico.GroupCRD, Version: "v1", Kind: calico.KindBGPConfiguration}

func configJSON(as int, logSeverity string) []byte {
	b, _ := json.Marshal(map[string]any{"apiVersion": "crd.projectcalico.org/v1", "kind": "BGPConfiguration", "metadata": map[string]any{"name": "default"},
		"spec": map[string]any{"nodeToNodeMeshEnabled": false, "asNumber": as, "logSeverityScreen": logSeverity}})
	return b
}

// TestCreateOfExistingIsJudgedAsItsUpdate: `calicoctl apply` of an object that exists sends a
// CREATE first, which admission judges before the API server answers AlreadyExists; rrguard
// answers it as the UPDATE calicoctl sends next, so calicoctl's answer is kubectl's.
func TestCreateOfExistingIsJudgedAsItsUpdate(t *testing.T) {
	objs := validatetest.Generate(validatetest.Layout{Nodes: 20, Reflectors: 2})
	// A configuration with an AS number Calico reserves, from before rrguard was installed.
	for _, o := range objs {
		if o.Config != nil {
			if err := json.Unmarshal(configJSON(23456, "Info"), o.Config); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := model.NewSnapshot(calico.NewState(objs))
	r := &Reviewer{Engine: validate.New(validate.DefaultConfig())}
	for name, c := range map[string]struct {
		kind       metav1.GroupVersionKind
		name       string
		obj, old   []byte
		allowed    bool
		wantRules  []string
		wantInText string
	}{
		"a peering changed so that the clients peer with no reflector": {
			kind: peerKind, name: "node-peer-to-rr",
			obj: peerJSON("node-peer-to-rr", "!has(route-reflector)", "has(no-such-label)"),
			old: peerJSON("node-peer-to-rr", "!has(route-reflector)", "has(route-reflector)"),
			// reflector-removal names a change of a BGPPeer, which a creation is not.
			wantRules: []string{validate.RuleReflectorRemoval}, wantInText: "changing BGPPeer node-peer-to-rr",
		},
		"the reserved AS number kept, the log level changed": {
			kind: configKind, name: "default",
			obj: configJSON(23456, "Debug"), old: configJSON(23456, "Info"),
			allowed: true,
		},
	} {
		t.Run(name, func(t *testing.T) {
			update := r.Review(t.Context(), request(admissionv1.Update, c.kind, c.name, c.obj, c.old), before)
			create := r.Review(t.Context(), request(admissionv1.Create, c.kind, c.name, c.obj, nil), before)
			if create.Allowed != c.allowed || update.Allowed != c.allowed {
				t.Fatalf("CREATE allowed=%v, UPDATE allowed=%v, want %v (%v; %v)", create.Allowed, update.Allowed, c.allowed, create.Result, update.Result)
			}
			if c.allowed {
				return
			}
			if create.Result.Message != update.Result.Message {
				t.Errorf("CREATE refused with\n  %s\nUPDATE with\n  %s", create.Result.Message, update.Result.Message)
			}
			for _, id := range c.wantRules {
				if !strings.Contains(create.Result.Message, "["+id+"]") {
					t.Errorf("CREATE's refusal does not name %s: %s", id, create.Result.Message)
				}
			}
			if !strings.Contains(create.Result.Message, c.wantInText) {
				t.Errorf("CREATE's refusal lacks %q: %s", c.wantInText, create.Result.Message)
			}
			if !slices.Equal(create.Warnings, update.Warnings) {
				t.Errorf("CREATE warned %q, UPDATE %q", create.Warnings, update.Warnings)
			}
		})
	}
}
