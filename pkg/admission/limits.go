package admission

import (
	"fmt"
	"strings"

	"github.com/rrguard/rrguard/pkg/calico"
	"github.com/rrguard/rrguard/pkg/selector"
	"github.com/rrguard/rrguard/pkg/validate"
	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The limits on what one request makes rrguard read. They are checked before anything is
// parsed or evaluated, so that the work of a request is bounded whatever it holds: anyone
// who can reach the webhook's port can post a review. The API server itself never sends
// objects past MaxObjectSize, nor labels past Kubernetes' limits.
const (
	// MaxObjectSize is the largest object (or old object) rrguard reads: the API server's own
	// limit on a request body (3 MiB); etcd stores at most half of that by default.
	MaxObjectSize = 3 << 20
	// MaxObjectTokens is the most JSON tokens (strings, numbers, literals, objects, arrays,
	// keys included) an object may have. Decoding a Calico object costs up to a few hundred
	// bytes per token, so this bounds what one object costs to read; a real one has hundreds.
	MaxObjectTokens = 100_000
	// Kubernetes' limits on a label: key prefix (a DNS subdomain), key name, value.
	maxLabelPrefix = content.DNS1123SubdomainMaxLength
	maxLabelName   = content.DNS1123LabelMaxLength
	maxLabelValue  = content.LabelValueMaxLength
)

// Judges reports whether rrguard judges requests about objects of kind: the kinds its
// webhook configurations register. A review of another kind is a mistake of whoever sent it.
func Judges(kind metav1.GroupVersionKind) bool { return checked(kind) }

// Cost estimates the bytes that decoding and judging req's objects allocate at most, from
// their sizes and token counts (without decoding them): what a server admitting many
// requests at once holds them to.
func Cost(req *admissionv1.AdmissionRequest) int64 {
	var n int64
	for _, raw := range [][]byte{req.Object.Raw, req.OldObject.Raw} {
		// Measured on calico.DecodeJSON's worst inputs (TestCostBoundsDecoding): about 5
		// bytes per byte (a long string is copied through the unstructured form and back),
		// and up to 250 bytes per token (a map or an interface per value in the
		// unstructured form).
		n += 6*int64(len(raw)) + 256*int64(jsonTokens(raw))
	}
	return n
}

// decodeWithin decodes an object (as decodeRaw) once its size and token count are within the
// limits.
func decodeWithin(raw []byte) (*calico.Object, error) {
	if len(raw) > MaxObjectSize {
		return nil, fmt.Errorf("%d bytes; rrguard reads objects of at most %d bytes (3 MiB, the API server's own limit on a request)", len(raw), MaxObjectSize)
	}
	if n := jsonTokens(raw); n > MaxObjectTokens {
		return nil, fmt.Errorf("%d JSON values and keys; rrguard reads objects of at most %d", n, MaxObjectTokens)
	}
	return decodeRaw(raw)
}

// overLimits refuses a new object with more than rrguard evaluates, before any of it is
// parsed: a selector longer than Calico allows (a selector-syntax finding, with the action
// rrguard.yaml gives that rule; the change is judged no further) or labels larger than
// Kubernetes allows (an error). Nil when the object is within the limits. The mutating pass
// leaves such an object alone: the validating pass says what is wrong.
func (r *Reviewer) overLimits(mode Mode, obj *calico.Object) (*Decision, error) {
	if obj == nil {
		return nil, nil
	}
	if err := labelsOverLimits(obj); err != nil {
		if !mode.validates() {
			return &Decision{}, nil
		}
		return nil, err
	}
	switch {
	case !overLong(obj):
		return nil, nil
	case !mode.validates():
		return &Decision{}, nil
	}
	d := &Decision{}
	cfg := r.Engine.Config()
	action := cfg.ActionFor(validate.RuleSelectorSyntax)
	for _, s := range selectorsOf(obj) {
		if len(*s.expr) > selector.MaxLength && action != validate.Off {
			d.Findings = append(d.Findings, validate.Finding{
				Rule: validate.RuleSelectorSyntax, Action: action, Field: s.field,
				Object:  validate.ObjectRef{Kind: obj.Kind, Group: obj.Group, Name: obj.Name},
				Message: fmt.Sprintf("%s %s: %s is %d characters long; Calico allows %d", obj.Kind, obj.Name, s.field, len(*s.expr), selector.MaxLength),
			})
		}
	}
	return d, nil
}

// unreadSelector stands for a selector of an old object that is longer than Calico allows: it
// does not parse, and costs nothing to find so.
const unreadSelector = "(a selector longer than Calico allows, not read)"

// withinLimits returns the old object of a change with every selector longer than Calico
// allows replaced by unreadSelector, so that judging the change parses none of them: the old
// object is the stored one (an update or deletion of it must stay possible), and what it had
// only matters for what the change newly introduces.
func withinLimits(old *calico.Object) *calico.Object {
	if old == nil || !overLong(old) {
		return old
	}
	out := *old
	switch {
	case old.Peer != nil:
		peer := *old.Peer
		out.Peer = &peer
	case old.Pool != nil:
		pool := *old.Pool
		out.Pool = &pool
	}
	for _, s := range selectorsOf(&out) {
		if len(*s.expr) > selector.MaxLength {
			*s.expr = unreadSelector
		}
	}
	return &out
}

// overLong reports whether an object has a selector longer than Calico allows.
func overLong(o *calico.Object) bool {
	for _, s := range selectorsOf(o) {
		if len(*s.expr) > selector.MaxLength {
			return true
		}
	}
	return false
}

type selectorField struct {
	field string
	expr  *string
}

// selectorsOf returns the selectors of an object that rrguard parses.
func selectorsOf(o *calico.Object) []selectorField {
	switch {
	case o.Peer != nil:
		return []selectorField{{"spec.nodeSelector", &o.Peer.Spec.NodeSelector}, {"spec.peerSelector", &o.Peer.Spec.PeerSelector}}
	case o.Pool != nil:
		return []selectorField{{"spec.nodeSelector", &o.Pool.Spec.NodeSelector}}
	}
	return nil
}

// labelsOverLimits checks a Node's labels (Kubernetes labels, and the Calico ones of a core
// Node's projectcalico.org/labels annotation or a v3 Node) against Kubernetes' limits on a
// label's key and value, and a core Node's annotations against their limit in all.
func labelsOverLimits(o *calico.Object) error {
	if o.Node == nil {
		return nil
	}
	calicoField := "metadata.labels"
	if o.CoreNode != nil {
		if err := apivalidation.ValidateAnnotationsSize(o.CoreNode.Annotations); err != nil {
			return fmt.Errorf("metadata.annotations: %w (Kubernetes' limit)", err)
		}
		calicoField = "metadata.annotations[" + calico.AnnotationLabels + "]"
	}
	for _, set := range []struct {
		field  string
		labels map[string]string
	}{{"metadata.labels", o.Node.K8sLabels}, {calicoField, o.Node.CalicoLabels}} {
		for k, v := range set.labels {
			if problem := labelProblem(k, v); problem != "" {
				return fmt.Errorf("%s: label %s %s", set.field, validate.Quote(k), problem)
			}
		}
	}
	return nil
}

// labelProblem says how a label exceeds Kubernetes' limits on its size ("" if it does not).
func labelProblem(key, value string) string {
	prefix, name, found := strings.Cut(key, "/")
	if !found {
		prefix, name = "", key
	}
	switch {
	case len(prefix) > maxLabelPrefix:
		return fmt.Sprintf("has a key prefix of %d characters; Kubernetes allows %d", len(prefix), maxLabelPrefix)
	case len(name) > maxLabelName:
		return fmt.Sprintf("has a key name of %d characters; Kubernetes allows %d", len(name), maxLabelName)
	case len(value) > maxLabelValue:
		return fmt.Sprintf("has a value of %d characters; Kubernetes allows %d", len(value), maxLabelValue)
	}
	return ""
}

// jsonTokens counts the tokens of a JSON document (strings, numbers, literals, objects and
// arrays; object keys included) in one pass over its bytes, without decoding it, and the
// strings of JSON held in its strings (an annotation holding a JSON map: each of its keys
// and values is two escaped quotes). Malformed JSON gives some count; its decoding then says
// what is wrong.
func jsonTokens(raw []byte) int {
	n, quoted := 0, 0
	inString, escaped, inScalar := false, false, false
	for _, c := range raw {
		if inString {
			switch {
			case escaped:
				escaped = false
				if c == '"' {
					quoted++
				}
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString, inScalar = true, false
			n++
		case '{', '[':
			inScalar = false
			n++
		case '}', ']', ',', ':', ' ', '\t', '\n', '\r':
			inScalar = false
		default:
			if !inScalar {
				inScalar = true
				n++
			}
		}
	}
	return n + quoted/2
}
