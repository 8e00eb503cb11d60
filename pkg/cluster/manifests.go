// Package cluster provides the cluster states rrguard judges against: manifest files (the
// CLI, CI and GitOps) and, in the server, the informer cache.
package cluster

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/rrguard/rrguard/pkg/calico"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// MaxFileSize is the largest manifest file rrguard reads.
const MaxFileSize = 16 << 20

// Manifests is what a set of files describes.
type Manifests struct {
	Objects []*calico.Object
	// Notes are things skipped on purpose (other kinds, empty documents), one line each.
	Notes []string
	// Sources maps "Kind/name" to where the object was read ("file.yaml#2").
	Sources map[string]string
}

// InputError is bad input: the CLI exits 2 on it.
type InputError struct {
	Source string // file, file#doc
	Err    error
}

func (e *InputError) Error() string { return e.Source + ": " + e.Err.Error() }
func (e *InputError) Unwrap() error { return e.Err }

// yamlTagSelector finds the YAML trap: an unquoted "!has(...)" is a YAML tag, and the field
// silently vanishes (the peer becomes global).
var yamlTagSelector = regexp.MustCompile(`(?m)^\s*(nodeSelector|peerSelector)\s*:\s*!`)

// LoadFiles reads YAML/JSON files and directories (recursively; *.yaml, *.yml, *.json),
// multi-document, and decodes the objects rrguard checks.
func LoadFiles(paths []string) (*Manifests, error) {
	m := &Manifests{Sources: map[string]string{}}
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			return nil, &InputError{Source: p, Err: errors.Unwrap(err)}
		}
		if !info.IsDir() {
			if err := checkRegular(p, info); err != nil {
				return nil, err
			}
			if err := m.loadFile(p); err != nil {
				return nil, err
			}
			continue
		}
		var files []string
		err = filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			switch strings.ToLower(filepath.Ext(path)) {
			case ".yaml", ".yml", ".json":
				if !d.IsDir() {
					files = append(files, path)
				}
			}
			return nil
		})
		if err != nil {
			return nil, &InputError{Source: p, Err: err}
		}
		sort.Strings(files)
		for _, f := range files {
			if err := m.loadFile(f); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// LoadReader reads one multi-document YAML/JSON stream named name.
func (m *Manifests) LoadReader(name string, r io.Reader) error {
	raw, err := ReadAll(name, r)
	if err != nil {
		return err
	}
	return m.load(name, raw)
}

// ReadAll reads an input named name of at most MaxFileSize bytes.
func ReadAll(name string, r io.Reader) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, &InputError{Source: name, Err: err}
	}
	if len(raw) > MaxFileSize {
		return nil, &InputError{Source: name, Err: fmt.Errorf("larger than the limit of %d MiB: split it into smaller files", MaxFileSize>>20)}
	}
	return raw, nil
}

// ReadFile reads a regular file of at most MaxFileSize bytes.
func ReadFile(path string) ([]byte, error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, &InputError{Source: path, Err: errors.Unwrap(err)}
	}
	if err := checkRegular(path, info); err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, &InputError{Source: path, Err: errors.Unwrap(err)}
	}
	defer f.Close()
	return ReadAll(path, f)
}

// checkRegular refuses what is not a regular file: reading a named pipe or a device blocks
// or never ends, and a socket cannot be opened at all.
func checkRegular(path string, info fs.FileInfo) error {
	if info.Mode().IsRegular() {
		return nil
	}
	what := "not a regular file"
	switch mode := info.Mode(); {
	case mode&fs.ModeNamedPipe != 0:
		what = "a named pipe"
	case mode&fs.ModeSocket != 0:
		what = "a socket"
	case mode&fs.ModeDevice != 0:
		what = "a device"
	}
	return &InputError{Source: path, Err: fmt.Errorf("%s: rrguard reads only regular files (give - to read standard input)", what)}
}

func (m *Manifests) loadFile(path string) error {
	raw, err := ReadFile(path)
	if err != nil {
		return err
	}
	return m.load(path, raw)
}

func (m *Manifests) load(name string, raw []byte) error {
	if i := bytes.IndexByte(raw, 0); i >= 0 {
		return &InputError{Source: name, Err: fmt.Errorf("NUL byte at offset %d: not a YAML or JSON file", i)}
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
	objects := 0
	for doc := 1; ; doc++ {
		chunk, err := reader.Read()
		if err == io.EOF {
			if objects == 0 {
				return &InputError{Source: name, Err: errors.New("no YAML or JSON document in it: give manifest files with apiVersion and kind")}
			}
			return nil
		}
		source := fmt.Sprintf("%s#%d", name, doc)
		if err != nil {
			return &InputError{Source: source, Err: err}
		}
		if onlyComments(chunk) {
			continue
		}
		if !bytes.Contains(chunk, []byte("Selector")) {
			// No selector field: the regular expression below has nothing to find.
		} else if loc := yamlTagSelector.FindSubmatch(chunk); loc != nil {
			return &InputError{Source: source, Err: fmt.Errorf("spec.%s: an unquoted selector starting with ! is a YAML tag, so the field is dropped and the BGPPeer silently applies to every node: quote it, e.g. %s: \"!has(route-reflector)\"", loc[1], loc[1])}
		}
		// The document is parsed once (YAML to JSON) and its JSON decoded once: straight into
		// the few fields rrguard reads for a core/v1 Node, the bulk of any cluster's
		// manifests, and into a generic object for the rest.
		j, err := yaml.YAMLToJSON(chunk)
		if err != nil {
			return &InputError{Source: source, Err: fmt.Errorf("not valid YAML/JSON: error converting YAML to JSON: %w", err)}
		}
		if o := calico.DecodeCoreNodeJSON(j); o != nil {
			objects++
			m.record(source, o)
			continue
		}
		var obj map[string]interface{}
		if err := json.Unmarshal(j, &obj); err != nil {
			return &InputError{Source: source, Err: fmt.Errorf("not valid YAML/JSON: error unmarshaling JSON: while decoding JSON: %w", err)}
		}
		if obj == nil {
			continue
		}
		objects++
		if err := m.add(source, &unstructured.Unstructured{Object: obj}); err != nil {
			return err
		}
	}
}

func (m *Manifests) add(source string, u *unstructured.Unstructured) error {
	if u.GetAPIVersion() == "" || u.GetKind() == "" {
		return &InputError{Source: source, Err: errors.New("apiVersion and kind are required")}
	}
	if u.IsList() {
		list, err := u.ToList()
		if err != nil {
			return &InputError{Source: source, Err: err}
		}
		if len(list.Items) == 0 {
			m.Notes = append(m.Notes, fmt.Sprintf("%s: %s %s has no items", source, u.GetAPIVersion(), u.GetKind()))
		}
		for i := range list.Items {
			if err := m.add(fmt.Sprintf("%s[%d]", source, i), &list.Items[i]); err != nil {
				return err
			}
		}
		return nil
	}
	calicoctlLabels(u)
	o, err := calico.Decode(u)
	if errors.Is(err, calico.ErrUnknownKind) {
		m.Notes = append(m.Notes, fmt.Sprintf("%s: skipped %s %s %q (not a kind rrguard checks)", source, u.GetAPIVersion(), u.GetKind(), u.GetName()))
		return nil
	}
	if err != nil {
		return &InputError{Source: source, Err: err}
	}
	m.record(source, o)
	return nil
}

// record adds an object read from source.
func (m *Manifests) record(source string, o *calico.Object) {
	key := o.Ref()
	if prev, ok := m.Sources[key]; ok {
		m.Notes = append(m.Notes, fmt.Sprintf("%s: %s %q was already defined in %s; the later definition is used", source, o.Kind, o.Name, prev))
	}
	m.Sources[key] = source
	m.Objects = append(m.Objects, o)
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

// onlyComments reports whether a document holds nothing but YAML comment lines and blanks,
// so that it counts as empty.
func onlyComments(b []byte) bool {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if t := bytes.TrimSpace(line); len(t) > 0 && t[0] != '#' {
			return false
		}
	}
	return true
}

// State builds the cluster state the manifests describe. A projectcalico.org/v3 Node file
// adds its BGP fields and labels to the core/v1 Node of the same name, as calicoctl would.
func (m *Manifests) State() *calico.State {
	core, v3 := map[string]*calico.Object{}, map[string]bool{}
	for _, o := range m.Objects {
		switch {
		case o.CoreNode != nil:
			core[o.Name] = o
		case o.Node != nil:
			v3[o.Name] = true
		}
	}
	objs := make([]*calico.Object, 0, len(m.Objects))
	for _, o := range m.Objects {
		if o.Node != nil && o.CoreNode == nil {
			if c, ok := core[o.Name]; ok {
				objs = append(objs, mergeV3(c, o))
				continue
			}
		}
		if o.CoreNode != nil && v3[o.Name] {
			continue // replaced by the merge above
		}
		objs = append(objs, o)
	}
	return calico.NewState(objs)
}

// mergeV3 lays a v3 Node's BGP fields and Calico labels over the core Node of the same name.
func mergeV3(core, v3 *calico.Object) *calico.Object {
	n := *core.Node
	n.IPv4Address, n.IPv6Address, n.ASNumber, n.ClusterID = v3.Node.IPv4Address, v3.Node.IPv6Address, v3.Node.ASNumber, v3.Node.ClusterID
	n.CalicoLabels = v3.Node.CalicoLabels
	return &calico.Object{Kind: calico.KindNode, Group: calico.GroupCore, Name: core.Name, CoreNode: core.CoreNode, Node: &n}
}
