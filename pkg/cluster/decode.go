package cluster

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/rrguard/rrguard/pkg/calico"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// yamlTagSelector finds the YAML trap: an unquoted "!has(...)" is a YAML tag, and the field
// silently vanishes (the peer becomes global).
var yamlTagSelector = regexp.MustCompile(`(?m)^\s*(nodeSelector|peerSelector)\s*:\s*!`)

// selectorTagError is the error for a document with an unquoted selector starting with "!".
func selectorTagError(source string, chunk []byte) error {
	if !bytes.Contains(chunk, []byte("Selector")) {
		return nil // no selector field: the regular expression below has nothing to find
	}
	if loc := yamlTagSelector.FindSubmatch(chunk); loc != nil {
		return &InputError{Source: source, Err: fmt.Errorf("spec.%s: an unquoted selector starting with ! is a YAML tag, so the field is dropped and the BGPPeer silently applies to every node: quote it, e.g. %s: \"!has(route-reflector)\"", loc[1], loc[1])}
	}
	return nil
}

// decodeParsed decodes a document named source from chunk and its parse p (yaml2.Unmarshal's,
// as sigs.k8s.io/yaml does).
func decodeParsed(source string, chunk []byte, p parsed, whole bool, in *interner) decoded {
	// A document that converts to JSON as it is and is a core/v1 Node, the bulk of any
	// cluster's manifests, is read straight from the parse.
	y := p.y
	asIs := p.ok && jsonable(y)
	if asIs && !whole {
		if n, ok := coreNodeFromYAML(y, in); ok {
			return decoded{counted: true, entries: []entry{{source: source, obj: &calico.Object{Kind: calico.KindNode, Name: n.Name, Node: n}}}}
		}
		if items, ok := listItems(y); ok {
			return decodeItems(source, items, in)
		}
	}
	// Anything else goes through JSON, as kubectl reads it: written from the parse when it
	// converts as it is (sigs.k8s.io/yaml.YAMLToJSON would write the same), else by
	// YAMLToJSON itself, which says what is wrong; then decoded once, into the few fields
	// rrguard reads for a core/v1 Node, or into a generic object.
	var j []byte
	var err error
	if asIs {
		j, err = json.Marshal(jsonValue(y))
	} else {
		j, err = yaml.YAMLToJSON(chunk)
	}
	if err != nil {
		return decoded{err: &InputError{Source: source, Err: fmt.Errorf("not valid YAML/JSON: error converting YAML to JSON: %w", err)}}
	}
	if !whole {
		if o := calico.DecodeCoreNodeJSON(j); o != nil {
			o.CoreNode = nil
			return decoded{counted: true, entries: []entry{{source: source, obj: o}}}
		}
	}
	var obj map[string]interface{}
	if err := json.Unmarshal(j, &obj); err != nil {
		return decoded{err: &InputError{Source: source, Err: fmt.Errorf("not valid YAML/JSON: error unmarshaling JSON: while decoding JSON: %w", err)}}
	}
	if obj == nil {
		return decoded{}
	}
	var d decoded
	d.counted = true
	d.err = add(&d, source, &unstructured.Unstructured{Object: obj})
	return d
}

// listItems returns the items of a parsed document that is a List (an apiVersion, a kind and
// a non-empty items array of objects: what `kubectl get -o yaml` writes), item by item as
// they were parsed.
func listItems(y interface{}) ([]interface{}, bool) {
	m, ok := y.(map[interface{}]interface{})
	if !ok {
		return nil, false
	}
	items, ok := m["items"].([]interface{})
	if !ok || len(items) == 0 {
		return nil, false
	}
	for _, k := range []string{"apiVersion", "kind"} {
		if s, ok := m[k].(string); !ok || s == "" {
			return nil, false
		}
	}
	for _, it := range items {
		if _, ok := it.(map[interface{}]interface{}); !ok {
			return nil, false
		}
	}
	return items, true
}

// decodeItems decodes a List's items each as the same object alone in a document would be
// (decodeParsed): a `kubectl get nodes -o yaml` export of 5,000 core/v1 Nodes is read
// straight from its parse, not turned into JSON and back whole, then copied item by item.
func decodeItems(source string, items []interface{}, in *interner) decoded {
	d := decoded{counted: true}
	for i, it := range items {
		di := decodeParsed(fmt.Sprintf("%s[%d]", source, i), nil, parsed{y: it, ok: true}, false, in)
		d.entries = append(d.entries, di.entries...)
		if di.err != nil {
			d.err = di.err
			return d
		}
	}
	return d
}

// add decodes u, read from source, into d.
func add(d *decoded, source string, u *unstructured.Unstructured) error {
	if u.GetAPIVersion() == "" || u.GetKind() == "" {
		return &InputError{Source: source, Err: errors.New("apiVersion and kind are required")}
	}
	if u.IsList() {
		list, err := u.ToList()
		if err != nil {
			return &InputError{Source: source, Err: err}
		}
		if len(list.Items) == 0 {
			d.entries = append(d.entries, entry{note: fmt.Sprintf("%s: %s %s has no items", source, u.GetAPIVersion(), u.GetKind())})
		}
		for i := range list.Items {
			if err := add(d, fmt.Sprintf("%s[%d]", source, i), &list.Items[i]); err != nil {
				return err
			}
		}
		return nil
	}
	calicoctlLabels(u)
	o, err := calico.Decode(u)
	if errors.Is(err, calico.ErrUnknownKind) {
		d.entries = append(d.entries, entry{note: fmt.Sprintf("%s: skipped %s %s %q (not a kind rrguard checks)", source, u.GetAPIVersion(), u.GetKind(), u.GetName())})
		return nil
	}
	if err != nil {
		return &InputError{Source: source, Err: err}
	}
	d.entries = append(d.entries, entry{source: source, obj: o})
	return nil
}

// calicoctlLabels turns the unquoted label values of a projectcalico.org/v3 object (YAML
// reads routeReflector: true as a boolean, 1 as a number) into the strings calicoctl stores:
// "true", "1". Kubernetes objects stay strict, as kubectl is.
func calicoctlLabels(u *unstructured.Unstructured) {
	if !strings.HasPrefix(u.GetAPIVersion(), "projectcalico.org/") {
		return
	}
	meta, _ := u.Object["metadata"].(map[string]interface{})
	labels, _ := meta["labels"].(map[string]interface{})
	for k, v := range labels {
		switch v := v.(type) {
		case bool:
			labels[k] = strconv.FormatBool(v)
		case float64:
			labels[k] = strconv.FormatFloat(v, 'f', -1, 64)
		case int64:
			labels[k] = strconv.FormatInt(v, 10)
		}
	}
}
