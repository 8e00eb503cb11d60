package cluster

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync"

	"github.com/rrguard/rrguard/pkg/calico"
	yaml2 "go.yaml.in/yaml/v2"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

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
		source := name + "#" + strconv.Itoa(doc)
		if header, items, lines, ok := splitList(chunk); ok && isListHeader(header) {
			// A List's items are decoded as documents of their own, on every core.
			for i, item := range items {
				if !l.add(fmt.Sprintf("%s[%d]", source, i), name, at+lines[i], item) {
					stopped = true
					break
				}
			}
			return !stopped
		}
		if !onlyComments(chunk) && !l.add(source, name, at+leadingLines(chunk), chunk) {
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

// isListHeader reports whether header, a List without its items (splitList), is one that
// add reads as a List: an apiVersion and a kind, and no other items.
func isListHeader(header []byte) bool {
	var m map[string]interface{}
	if yaml2.Unmarshal(header, &m) != nil {
		return false
	}
	v, _ := m["apiVersion"].(string)
	k, _ := m["kind"].(string)
	_, items := m["items"]
	return v != "" && k != "" && !items
}
