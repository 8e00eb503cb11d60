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
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"

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
	// Sources maps an object's Ref ("Kind.group/name") to where it was read.
	Sources map[string]Source

	whole bool // LoadOptions.WholeNodes
}

// Source is where an object was read.
type Source struct {
	// Document names the file and the document's number in it ("nodes.yaml#2"; an item of
	// a List: "nodes.yaml#2[0]").
	Document string
	// File is the file (or the input's name); Line is the line of the file the document's
	// content starts on, 1 for the first.
	File string
	Line int
}

func (s Source) String() string { return s.Document }

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

// LoadOptions says what LoadFiles keeps of what it reads.
type LoadOptions struct {
	// WholeNodes keeps each core/v1 Node whole in Object.CoreNode, for writing it back (rrguard
	// plan). Without it a core/v1 Node keeps only what rrguard judges (Object.Node): loading
	// 100,000 Nodes then takes a fraction of the memory.
	WholeNodes bool
}

// LoadFiles reads YAML/JSON files and directories (recursively; *.yaml, *.yml, *.json),
// multi-document, and decodes the objects rrguard checks. Documents are decoded on every
// core; objects, notes and the first error come in the order of the input.
func LoadFiles(paths []string, opts LoadOptions) (*Manifests, error) {
	m := &Manifests{Sources: map[string]Source{}, whole: opts.WholeNodes}
	err := m.run(func(l *loader) bool {
		for _, p := range paths {
			info, err := os.Stat(p)
			if err != nil {
				return l.fail(&InputError{Source: p, Err: errors.Unwrap(err)})
			}
			if !info.IsDir() {
				if err := checkRegular(p, info); err != nil {
					return l.fail(err)
				}
				if !l.file(p) {
					return false
				}
				continue
			}
			files, err := manifestFiles(p)
			if err != nil {
				return l.fail(&InputError{Source: p, Err: err})
			}
			for _, f := range files {
				if !l.file(f) {
					return false
				}
			}
		}
		return true
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// manifestFiles lists the manifest files under dir (*.yaml, *.yml, *.json), sorted.
func manifestFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
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
	sort.Strings(files)
	return files, err
}

// LoadReader reads one multi-document YAML/JSON stream named name.
func (m *Manifests) LoadReader(name string, r io.Reader) error {
	raw, err := ReadAll(name, r)
	if err != nil {
		return err
	}
	return m.run(func(l *loader) bool { return l.input(name, raw) })
}

// ReadAll reads an input named name of at most MaxFileSize bytes.
func ReadAll(name string, r io.Reader) ([]byte, error) {
	return readAll(name, r, 0)
}

// readAll reads an input named name of at most MaxFileSize bytes, expecting about size.
func readAll(name string, r io.Reader, size int64) ([]byte, error) {
	b := bytes.NewBuffer(make([]byte, 0, min(size, MaxFileSize)+bytes.MinRead))
	if _, err := b.ReadFrom(io.LimitReader(r, MaxFileSize+1)); err != nil {
		return nil, &InputError{Source: name, Err: err}
	}
	if b.Len() > MaxFileSize {
		return nil, &InputError{Source: name, Err: fmt.Errorf("larger than the limit of %d MiB: split it into smaller files", MaxFileSize>>20)}
	}
	return b.Bytes(), nil
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
	return readAll(path, f, info.Size())
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

// loader hands the documents of the input, in order and in batches, to the workers that
// decode them and to the merge that adds what they decoded to the manifests.
type loader struct {
	jobs  chan<- *batch // to the workers
	order chan<- *batch // every batch, in the order of the input
	stop  <-chan struct{}
	cur   *batch
}

// batchSize is the most documents a batch holds: enough that handing them over costs
// nothing next to decoding them.
const batchSize = 64

// batch is a run of documents of the input and what follows them: an error of the input, or
// the end of a file.
type batch struct {
	docs []document
	err  error  // an error of the input after docs
	end  string // the end of the file named, after docs: it must have held a document
	done chan struct{}
}

// document is one document of the input and, once a worker decoded it, what it holds.
type document struct {
	source string
	// file is the input the document is in, line the line its content starts on.
	file  string
	line  int
	chunk []byte
	decoded
}

// decoded is what a document holds: objects and notes in the order they were met.
type decoded struct {
	entries []entry
	counted bool // the document was not empty
	err     error
}

type entry struct {
	source string
	obj    *calico.Object // or
	note   string
}

// run decodes the documents produce hands to the loader, on every core, and adds them in
// order; it stops at the first error of the input (in the input's order) and returns it.
func (m *Manifests) run(produce func(*loader) bool) error {
	workers := runtime.GOMAXPROCS(0)
	jobs, order, stop := make(chan *batch, 4*workers), make(chan *batch, 64), make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			var w worker
			for b := range jobs {
				w.decode(b.docs, m.whole)
				close(b.done)
			}
		})
	}
	go func() {
		l := &loader{jobs: jobs, order: order, stop: stop}
		if produce(l) {
			l.flush()
		}
		close(jobs)
		close(order)
	}()
	err := m.merge(order)
	close(stop)
	for range order {
		// Let the producer finish: it stops at its next batch.
	}
	wg.Wait()
	return err
}

// merge adds the decoded documents in order, until the first error.
func (m *Manifests) merge(order <-chan *batch) error {
	objects := 0
	for b := range order {
		<-b.done
		for _, d := range b.docs {
			if d.err != nil {
				return d.err
			}
			if d.counted {
				objects++
			}
			for _, e := range d.entries {
				if e.obj != nil {
					m.record(Source{Document: e.source, File: d.file, Line: d.line}, e.obj)
				} else {
					m.Notes = append(m.Notes, e.note)
				}
			}
		}
		if b.err != nil {
			return b.err
		}
		if b.end != "" {
			if objects == 0 {
				return &InputError{Source: b.end, Err: errors.New("no YAML or JSON document in it: give manifest files with apiVersion and kind")}
			}
			objects = 0
		}
	}
	return nil
}

// batch is the batch being filled.
func (l *loader) batch() *batch {
	if l.cur == nil {
		l.cur = &batch{docs: make([]document, 0, batchSize)}
	}
	return l.cur
}

// add queues a document of file that starts on line.
func (l *loader) add(source, file string, line int, chunk []byte) bool {
	b := l.batch()
	b.docs = append(b.docs, document{source: source, file: file, line: line, chunk: chunk})
	if len(b.docs) == batchSize {
		return l.flush()
	}
	return true
}

// flush hands the queued documents on; false once the merge stopped.
func (l *loader) flush() bool {
	b := l.cur
	if b == nil {
		return true
	}
	l.cur = nil
	b.done = make(chan struct{})
	select {
	case l.jobs <- b:
	case <-l.stop:
		return false
	}
	select {
	case l.order <- b:
		return true
	case <-l.stop:
		return false
	}
}

// fail hands on an error of the input after the queued documents; the merge stops there.
func (l *loader) fail(err error) bool {
	l.batch().err = err
	l.flush()
	return false
}

// file hands on the documents of the file at path.
func (l *loader) file(path string) bool {
	raw, err := ReadFile(path)
	if err != nil {
		return l.fail(err)
	}
	return l.input(path, raw)
}

// input hands on the documents of raw, an input named name, and its end.
func (l *loader) input(name string, raw []byte) bool {
	if i := bytes.IndexByte(raw, 0); i >= 0 {
		return l.fail(&InputError{Source: name, Err: fmt.Errorf("NUL byte at offset %d: not a YAML or JSON file", i)})
	}
	// line is the line the next document starts on: each document is followed by the
	// separator line that ends it (a separator that starts a document is part of it).
	doc, line, stopped := 0, 1, false
	next := func(chunk []byte) bool {
		doc++
		at := line
		line += bytes.Count(chunk, []byte{'\n'}) + 1
		if !onlyComments(chunk) && !l.add(name+"#"+strconv.Itoa(doc), name, at+leadingLines(chunk), chunk) {
			stopped = true
		}
		return !stopped
	}
	if splitDocuments(raw, next) {
		if stopped {
			return false
		}
	} else {
		// What splitDocuments leaves to the reader kubectl uses: carriage returns, a
		// separator line it refuses.
		reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(raw)))
		for {
			chunk, err := reader.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				return l.fail(&InputError{Source: fmt.Sprintf("%s#%d", name, doc+1), Err: err})
			}
			if !next(chunk) {
				return false
			}
		}
	}
	l.batch().end = name
	return l.flush()
}

// splitDocuments calls doc with each document of raw, as utilyaml.YAMLReader splits them
// (FuzzSplitDocuments), without copying them; it stops when doc returns false. It returns
// false, before calling doc, for what it leaves to that reader: an input with a carriage
// return (the reader drops it before a line feed) or a "---" line followed by other than a
// comment (the reader refuses it).
func splitDocuments(raw []byte, doc func([]byte) bool) bool {
	if bytes.IndexByte(raw, '\r') >= 0 {
		return false
	}
	// First pass: check every separator line, so that nothing is handed on for an input the
	// reader refuses.
	for rest := raw; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		if after, ok := bytes.CutPrefix(line, []byte("---")); ok {
			if t := bytes.TrimSpace(after); len(t) > 0 && t[0] != '#' {
				return false
			}
		}
	}
	start := 0
	for pos := 0; pos < len(raw); {
		end := len(raw)
		if i := bytes.IndexByte(raw[pos:], '\n'); i >= 0 {
			end = pos + i + 1
		}
		if bytes.HasPrefix(raw[pos:end], []byte("---")) && pos > start {
			// A separator ends the document before it and is dropped; one that starts a
			// document (nothing before it) is kept, as the reader does.
			if !doc(raw[start:pos]) {
				return true
			}
			start = end
		}
		pos = end
	}
	if start < len(raw) {
		last := raw[start:]
		if last[len(last)-1] != '\n' {
			// The reader ends every line with a line feed, the last one too.
			last = append(last[:len(last):len(last)], '\n')
		}
		doc(last)
	}
	return true
}

// worker decodes batches of documents.
type worker struct {
	in interner
}

// decode decodes docs. Without whole, a core/v1 Node keeps only what rrguard judges, its
// labels interned.
func (w *worker) decode(docs []document, whole bool) {
	for i := range docs {
		d := &docs[i]
		if d.err = selectorTagError(d.source, d.chunk); d.err == nil {
			d.decoded = decodeParsed(d.source, d.chunk, parse(d.chunk), whole, &w.in)
		}
		d.chunk = nil
	}
}

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

// record adds an object read from source.
func (m *Manifests) record(source Source, o *calico.Object) {
	key := o.Ref()
	if prev, ok := m.Sources[key]; ok {
		m.Notes = append(m.Notes, fmt.Sprintf("%s: %s %q was already defined in %s; the later definition is used", source, o.Kind, o.Name, prev))
	}
	if m.Sources == nil {
		m.Sources = map[string]Source{}
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

// leadingLines counts the lines at the start of a document before its content: blank lines,
// comments and a separator, so that a document's line is where its first field is.
func leadingLines(b []byte) int {
	n := 0
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		t := bytes.TrimSpace(line)
		if len(t) > 0 && t[0] != '#' && !bytes.HasPrefix(line, []byte("---")) {
			return n
		}
		n++
	}
	return 0
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
func (m *Manifests) State() *calico.State { return calico.NewState(m.resolved()) }

// resolved returns the objects of the manifests with each projectcalico.org/v3 Node laid over
// the core/v1 Node of the same name, which it replaces.
func (m *Manifests) resolved() []*calico.Object {
	if !slices.ContainsFunc(m.Objects, func(o *calico.Object) bool { return o.Node != nil && !o.Node.FromCore }) {
		return m.Objects // no v3 Node to lay over a core one
	}
	core, v3 := map[string]*calico.Object{}, map[string]bool{}
	for _, o := range m.Objects {
		switch {
		case o.Node != nil && o.Node.FromCore:
			core[o.Name] = o
		case o.Node != nil:
			v3[o.Name] = true
		}
	}
	objs := make([]*calico.Object, 0, len(m.Objects))
	for _, o := range m.Objects {
		if o.Node != nil && !o.Node.FromCore {
			if c, ok := core[o.Name]; ok {
				objs = append(objs, mergeV3(c, o))
				continue
			}
		}
		if o.Node != nil && o.Node.FromCore && v3[o.Name] {
			continue // replaced by the merge above
		}
		objs = append(objs, o)
	}
	return objs
}

// mergeV3 lays a v3 Node's BGP fields and Calico labels over the core Node of the same name.
func mergeV3(core, v3 *calico.Object) *calico.Object {
	n := *core.Node
	n.IPv4Address, n.IPv6Address, n.ASNumber, n.ClusterID = v3.Node.IPv4Address, v3.Node.IPv6Address, v3.Node.ASNumber, v3.Node.ClusterID
	n.CalicoLabels = v3.Node.CalicoLabels
	return &calico.Object{Kind: calico.KindNode, Group: calico.GroupCore, Name: core.Name, CoreNode: core.CoreNode, Node: &n}
}
