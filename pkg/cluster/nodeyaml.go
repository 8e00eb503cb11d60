package cluster

import (
	"math"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rrguard/rrguard/pkg/calico"
)

// coreNodeFromYAML reads a core/v1 Node from a jsonable document as go.yaml.in/yaml/v2
// decodes it (y: the parse sigs.k8s.io/yaml.YAMLToJSON starts from), into what the JSON path
// (YAMLToJSON, then calico.DecodeCoreNodeJSON) would read, without writing and reading the
// JSON in between: most of the cost of loading a cluster's Node manifests.
//
// ok is false when the document is not a core/v1 Node with a name, or when it holds anything
// that path could read differently or refuse (a document that is not jsonable, the caller
// leaves to it): a value that is not a string where rrguard reads one, a field name
// in other case (encoding/json matches names case-insensitively), a metadata field this
// function does not check. The JSON path then decides, so that both read every document the
// same (FuzzCoreNodeFromYAML).
//
// Label keys and values go through in, so that the many nodes of a cluster share their
// copies of "kubernetes.io/os", "linux" and the like.
func coreNodeFromYAML(y interface{}, in *interner) (*calico.Node, bool) {
	top, ok := y.(map[interface{}]interface{})
	if !ok {
		return nil, false
	}
	var meta, status map[interface{}]interface{}
	apiVersion, kind := false, false
	for k, v := range top {
		k, _ := k.(string)
		switch k {
		case "apiVersion":
			apiVersion = v == "v1"
		case "kind":
			kind = v == calico.KindNode
		case "metadata":
			meta, _ = v.(map[interface{}]interface{})
		case "status":
			if v != nil {
				if status, ok = v.(map[interface{}]interface{}); !ok {
					return nil, false
				}
			}
		default:
			if foldsTo(k, "apiVersion", "kind", "metadata", "status") {
				return nil, false
			}
		}
	}
	if !apiVersion || !kind || meta == nil {
		return nil, false
	}
	var name string
	var labels, annotations map[string]string
	for k, v := range meta {
		switch k, _ := k.(string); k {
		case "name":
			if name, ok = v.(string); !ok || !utf8.ValidString(name) {
				return nil, false
			}
		case "labels":
			if labels, ok = stringMap(v, in); !ok {
				return nil, false
			}
		case "annotations":
			if annotations, ok = stringMap(v, nil); !ok {
				return nil, false
			}
		case "uid", "resourceVersion", "generateName", "namespace", "selfLink":
			if _, ok := v.(string); !ok && v != nil {
				return nil, false
			}
		case "creationTimestamp":
			if !timeOrNil(v) {
				return nil, false
			}
		default:
			return nil, false
		}
	}
	if name == "" {
		return nil, false
	}
	ready, ok := readyOf(status)
	if !ok {
		return nil, false
	}
	return calico.NodeFromCoreFields(name, labels, annotations, ready), true
}

// readyOf is the Ready condition's status in a Node's status (nil: no Ready condition), as
// calico.NodeFromCore reads it; ok is false when the conditions are not plain.
func readyOf(status map[interface{}]interface{}) (ready *bool, ok bool) {
	var conditions []interface{}
	for k, v := range status {
		k, _ := k.(string)
		switch k {
		case "conditions":
			if v != nil {
				if conditions, ok = v.([]interface{}); !ok {
					return nil, false
				}
			}
		default:
			if foldsTo(k, "conditions") {
				return nil, false
			}
		}
	}
	for _, c := range conditions {
		c, ok := c.(map[interface{}]interface{})
		if !ok {
			return nil, false
		}
		var typ, st string
		for k, v := range c {
			k, _ := k.(string)
			switch k {
			case "type", "status", "reason", "message":
				s, ok := v.(string)
				if (!ok && v != nil) || !utf8.ValidString(s) {
					return nil, false
				}
				if k == "type" {
					typ = s
				} else if k == "status" {
					st = s
				}
			case "lastHeartbeatTime", "lastTransitionTime":
				if !timeOrNil(v) {
					return nil, false
				}
			default:
				if foldsTo(k, "type", "status", "reason", "message", "lastHeartbeatTime", "lastTransitionTime") {
					return nil, false
				}
			}
		}
		if typ == "Ready" {
			r := st == "True"
			ready = &r
		}
	}
	return ready, true
}

// jsonable reports whether v converts to JSON as it is: maps with string keys, lists,
// strings, booleans, integers, finite numbers and nulls.
func jsonable(v interface{}) bool {
	switch v := v.(type) {
	case map[interface{}]interface{}:
		for k, x := range v {
			if _, ok := k.(string); !ok || !jsonable(x) {
				return false
			}
		}
	case []interface{}:
		for _, x := range v {
			if !jsonable(x) {
				return false
			}
		}
	case float64:
		return !math.IsInf(v, 0) && !math.IsNaN(v)
	case nil, string, bool, int, int64, uint64:
	default:
		return false
	}
	return true
}

// jsonValue is a jsonable value with its maps keyed by string, as json.Marshal takes it.
func jsonValue(v interface{}) interface{} {
	switch v := v.(type) {
	case map[interface{}]interface{}:
		out := make(map[string]interface{}, len(v))
		for k, x := range v {
			out[k.(string)] = jsonValue(x)
		}
		return out
	case []interface{}:
		out := make([]interface{}, len(v))
		for i, x := range v {
			out[i] = jsonValue(x)
		}
		return out
	}
	return v
}

// stringMap reads a map of strings (nil for null), its keys and values interned by in
// unless nil; ok is false for anything else.
func stringMap(v interface{}, in *interner) (map[string]string, bool) {
	if v == nil {
		return nil, true
	}
	m, ok := v.(map[interface{}]interface{})
	if !ok {
		return nil, false
	}
	out := make(map[string]string, len(m))
	for k, x := range m {
		k, kok := k.(string)
		s, ok := x.(string)
		if !kok || !ok || !utf8.ValidString(k) || !utf8.ValidString(s) {
			return nil, false
		}
		if in != nil {
			k, s = in.intern(k), in.intern(s)
		}
		out[k] = s
	}
	return out, true
}

// interner hands out one copy of each string it is given. It holds at most internMax
// strings, then starts afresh: a label value unique to each node must not make it grow
// without bound.
type interner struct {
	m map[string]string
}

const internMax = 1 << 14

func (in *interner) intern(s string) string {
	if t, ok := in.m[s]; ok {
		return t
	}
	if len(in.m) >= internMax || in.m == nil {
		in.m = make(map[string]string, 256)
	}
	in.m[s] = s
	return s
}

// timeOrNil reports whether v is null or a time metav1.Time reads (RFC 3339).
func timeOrNil(v interface{}) bool {
	if v == nil {
		return true
	}
	s, ok := v.(string)
	if !ok {
		return false
	}
	_, err := time.Parse(time.RFC3339, s)
	return err == nil
}

// foldsTo reports whether key is one of names in other case: encoding/json would read it as
// that field.
func foldsTo(key string, names ...string) bool {
	for _, n := range names {
		if strings.EqualFold(key, n) {
			return true
		}
	}
	return false
}
