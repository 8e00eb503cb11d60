// Package cluster provides the cluster states rrguard judges against: manifest files (the
// CLI, CI and GitOps) and, in the server, the informer cache.
package cluster

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rrguard/rrguard/pkg/calico"
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
		if d.IsDir() && path != dir && strings.HasPrefix(d.Name(), ".") {
			// .git, and a mounted ConfigMap's ..data and ..<timestamp> directories, which
			// hold the files its top level links to (read twice otherwise).
			return filepath.SkipDir
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
