package cluster

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/rrguard/rrguard/pkg/calico"
	yaml2 "go.yaml.in/yaml/v2"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// nodeDocs are core/v1 Node documents, plain and odd: each either reads the same straight
// from the parse as through JSON, or is left to the JSON path.
var nodeDocs = []string{
	// kubectl get node -o yaml
	`apiVersion: v1
kind: Node
metadata:
  annotations:
    node.alpha.kubernetes.io/ttl: "0"
    projectcalico.org/IPv4Address: 10.0.0.1/24
    projectcalico.org/RouteReflectorClusterID: 244.0.0.1
    projectcalico.org/labels: '{"rack":"r1"}'
  creationTimestamp: "2024-05-01T10:00:00Z"
  labels:
    kubernetes.io/hostname: n1
    route-reflector: "true"
  name: n1
  resourceVersion: "1234"
  uid: 0b3c4f1e-1111-2222-3333-444455556666
spec:
  podCIDR: 10.244.0.0/24
status:
  addresses:
  - address: 10.0.0.1
    type: InternalIP
  conditions:
  - lastHeartbeatTime: "2024-05-01T10:00:00Z"
    lastTransitionTime: "2024-05-01T10:00:00Z"
    message: kubelet is posting ready status
    reason: KubeletReady
    status: "False"
    type: Ready
  capacity: {cpu: "4", pods: 110}
`,
	"apiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: {a: b}}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: {a: true}}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: {a: yes}}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: {a: 1.10}}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: {a: ~}}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: {1: a}}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: null}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n2, labels: {}}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: 12}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: ''}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {Name: n3}\n",
	"apiVersion: v1\nkind: Node\nMetadata: {name: n3}\nmetadata: {name: n4}\n",
	"apiVersion: v1\nKind: Node\nkind: Node\nmetadata: {name: n3}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3, generation: 2}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3, generation: x}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3, creationTimestamp: yesterday}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3, creationTimestamp: 2024-05-01T10:00:00Z}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3, uid: 7}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3}\nspec: {x: .inf}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3}\nspec: {~: 1}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3}\nspec: {18446744073709551615: 1}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3}\nstatus: up\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3}\nstatus: {conditions: {type: Ready}}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3}\nstatus: {Conditions: [{type: Ready, status: 'True'}]}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3}\nstatus: {conditions: [{type: Ready, status: true}]}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3}\nstatus: {conditions: [{type: Ready, Status: 'True'}]}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3}\nstatus: {conditions: [{type: Ready, status: 'True'}, {type: Ready, status: Unknown}]}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3}\nstatus: {conditions: [~]}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3}\nstatus: {conditions: [{type: Ready, lastHeartbeatTime: now}]}\n",
	"apiVersion: v1\nkind: Node\nmetadata: &m {name: n3}\nspec: {copy: *m}\n",
	"apiVersion: v1\nkind: Node\nbase: &b {name: n3, labels: {a: b}}\nmetadata: {<<: *b, name: n5}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3, annotations: {projectcalico.org/labels: '[1]'}}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: \"n\\xff\"}\n",
	"apiVersion: v1\nkind: Node\nmetadata: {name: n3, labels: {\"k\\u212a\": v}}\n",
	"apiVersion: v2\nkind: Node\nmetadata: {name: n3}\n",
	"apiVersion: v1\nkind: NodeList\nitems: []\n",
	"{\"apiVersion\":\"v1\",\"kind\":\"Node\",\"metadata\":{\"name\":\"j1\",\"labels\":{\"a\":\"b\"}}}",
	"apiVersion: v1\nkind: Node\nmetadata:\n  name: n6\n  labels:\n    a: b\n    a: c\n",
}

// jsonPathNode reads a document as rrguard read every document before reading Nodes
// straight from the parse: YAML to JSON, then the JSON into a core/v1 Node.
func jsonPathNode(doc []byte) (*calico.Node, error) {
	j, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, err
	}
	o := calico.DecodeCoreNodeJSON(j)
	if o == nil {
		return nil, errors.New("not a core/v1 Node")
	}
	return o.Node, nil
}

// sameNode reports how two reads of a node differ ("" if they do not).
func sameNode(a, b *calico.Node) string {
	ae, be := fmt.Sprint(a.CalicoLabelsError), fmt.Sprint(b.CalicoLabelsError)
	if a.Name != b.Name || a.FromCore != b.FromCore || !maps.Equal(a.K8sLabels, b.K8sLabels) || (a.K8sLabels == nil) != (b.K8sLabels == nil) ||
		!maps.Equal(a.CalicoLabels, b.CalicoLabels) || ae != be || a.IPv4Address != b.IPv4Address || a.IPv6Address != b.IPv6Address ||
		a.ASNumber != b.ASNumber || a.ClusterID != b.ClusterID || !reflect.DeepEqual(a.Ready, b.Ready) {
		return fmt.Sprintf("%+v\nvs %+v", a, b)
	}
	return ""
}

// checkSameRead fails t when doc reads straight from the parse but differently than through
// JSON, or when the JSON path refuses it.
func checkSameRead(t *testing.T, doc []byte) (fast bool) {
	t.Helper()
	var y interface{}
	if yaml2.Unmarshal(doc, &y) != nil || !jsonable(y) {
		return false
	}
	n, ok := coreNodeFromYAML(y, &interner{})
	if !ok {
		return false
	}
	want, err := jsonPathNode(doc)
	if err != nil {
		t.Fatalf("read straight from the parse, but the JSON path refuses it (%v):\n%s", err, doc)
	}
	if d := sameNode(n, want); d != "" {
		t.Fatalf("read differently straight from the parse than through JSON:\n%s\n%s", doc, d)
	}
	return true
}

func TestCoreNodeFromYAML(t *testing.T) {
	fast := 0
	for _, doc := range nodeDocs {
		if checkSameRead(t, []byte(doc)) {
			fast++
		}
	}
	// The plain ones are read straight from the parse: the path this is about is taken.
	if fast < 8 {
		t.Errorf("%d of %d documents read straight from the parse", fast, len(nodeDocs))
	}
	for _, doc := range []string{nodeDocs[0], nodeDocs[1], nodeDocs[len(nodeDocs)-2]} {
		var y interface{}
		if err := yaml2.Unmarshal([]byte(doc), &y); err != nil {
			t.Fatal(err)
		}
		if _, ok := coreNodeFromYAML(y, &interner{}); !ok || !jsonable(y) {
			t.Errorf("not read straight from the parse:\n%s", doc)
		}
	}
}

// FuzzCoreNodeFromYAML: a document read straight from the parse reads exactly as through
// JSON (rrguard's reading of every document before).
func FuzzCoreNodeFromYAML(f *testing.F) {
	for _, doc := range nodeDocs {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkSameRead(t, doc)
	})
}

// readerDocuments splits raw with the reader kubectl uses.
func readerDocuments(raw []byte) ([]string, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	var out []string
	for {
		chunk, err := r.Read()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, string(chunk))
	}
}

var splitInputs = []string{
	"", "\n", "---", "---\n", "a: 1", "a: 1\n", "a: 1\n---\nb: 2", "---\na: 1\n---\n---\nb: 2\n",
	"a: 1\n--- # comment\nb: 2\n", "a: 1\n---   \nb: 2\n", "a: 1\n----\nb: 2\n", "a: 1\n--- b: 2\n",
	"a: 1\r\n---\r\nb: 2\r\n", "a: |\n  ---\n  x\n", "  ---\na: 1\n", "a: 1\n\n\n---\n\n", "# c\n---\n# d\n",
	"a: 1\n---\tx\n", "a: 1\n...\n---\nb: 2\n", strings.Repeat("x", 70000) + "\n---\ny\n",
}

func TestSplitDocuments(t *testing.T) {
	split := 0
	for _, in := range splitInputs {
		if checkSplit(t, []byte(in)) {
			split++
		}
	}
	if split < len(splitInputs)-4 {
		t.Errorf("%d of %d inputs split", split, len(splitInputs))
	}
}

// checkSplit fails t when splitDocuments splits raw other than the reader does.
func checkSplit(t *testing.T, raw []byte) bool {
	t.Helper()
	var got []string
	if !splitDocuments(raw, func(d []byte) bool { got = append(got, string(d)); return true }) {
		return false
	}
	want, err := readerDocuments(raw)
	if err != nil {
		t.Fatalf("split %q, the reader refuses it: %v", raw, err)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("split %q\ninto %q\nthe reader into %q", raw, got, want)
	}
	return true
}

// FuzzSplitDocuments: documents are split exactly as kubectl's reader splits them.
func FuzzSplitDocuments(f *testing.F) {
	for _, in := range splitInputs {
		f.Add([]byte(in))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkSplit(t, raw)
	})
}

// checkJSONFromParse fails t when the JSON rrguard writes from a document's parse differs
// from sigs.k8s.io/yaml.YAMLToJSON's.
func checkJSONFromParse(t *testing.T, doc []byte) bool {
	t.Helper()
	var y interface{}
	if yaml2.Unmarshal(doc, &y) != nil || !jsonable(y) {
		return false
	}
	got, err := json.Marshal(jsonValue(y))
	if err != nil {
		t.Fatalf("%q: %v", doc, err)
	}
	want, err := yaml.YAMLToJSON(doc)
	if err != nil {
		t.Fatalf("%q: written from the parse, YAMLToJSON refuses it: %v", doc, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%q:\nfrom the parse %s\nYAMLToJSON     %s", doc, got, want)
	}
	return true
}

func TestJSONFromParse(t *testing.T) {
	n := 0
	for _, doc := range append(nodeDocs, "apiVersion: v1\nkind: List\nitems: [{a: 1.5, b: [x, 2, true, null]}, {c: 1e3, d: '<&>'}]\n", "x: 18446744073709551615\n", "- 1\n- a\n", "a: .inf\n", "~: 1\n", "1: a\n") {
		if checkJSONFromParse(t, []byte(doc)) {
			n++
		}
	}
	if n < len(nodeDocs)/2 {
		t.Errorf("%d documents written from the parse", n)
	}
}

// FuzzJSONFromParse: what a document's parse is written as equals YAMLToJSON's output.
func FuzzJSONFromParse(f *testing.F) {
	for _, doc := range nodeDocs {
		f.Add([]byte(doc))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		checkJSONFromParse(t, doc)
	})
}
