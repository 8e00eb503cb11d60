package policy

import (
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rrguard/rrguard/policies"
	"sigs.k8s.io/yaml"
)

// libSource is package rrguard.lib: helpers over data.rrguard.cluster, always loaded.
//
//go:embed lib.rego
var libSource []byte

// MaxFileSize is the largest policy or params file rrguard reads.
const MaxFileSize = 1 << 20

// maxDepth bounds how deep policy directories are read (symbolic links may loop).
const maxDepth = 8

// file is one policy or params file.
type file struct {
	name    string
	data    []byte
	shipped bool // built into rrguard
	lib     bool // rrguard.lib
	test    bool // *_test.rego
}

// sources is everything a policy set is built from.
type sources struct {
	rego   []file
	params map[string]any // data.rrguard.params, by policy name
	digest string         // changes whenever any file does
}

// isParams reports whether a file holds policy parameters: params.yaml, params.json, or
// <anything>.params.yaml (.yml, .json).
func isParams(name string) bool {
	base := strings.ToLower(filepath.Base(name))
	for _, ext := range []string{".yaml", ".yml", ".json"} {
		if base == "params"+ext || strings.HasSuffix(base, ".params"+ext) {
			return true
		}
	}
	return false
}

func read(opts Options) (*sources, error) {
	var files, params []file
	files = append(files, file{name: "rrguard:lib.rego", data: libSource, shipped: true, lib: true})
	if !opts.NoShipped {
		entries, err := fs.ReadDir(policies.FS, ".")
		if err != nil {
			return nil, err
		}
		for _, e := range entries {
			test := strings.HasSuffix(e.Name(), "_test.rego")
			if test && !opts.Tests {
				continue
			}
			data, err := fs.ReadFile(policies.FS, e.Name())
			if err != nil {
				return nil, err
			}
			files = append(files, file{name: "rrguard:" + e.Name(), data: data, shipped: true, test: test})
		}
	}
	var problems []Problem
	for _, dir := range opts.Dirs {
		info, err := os.Stat(dir)
		switch {
		case err != nil:
			problems = append(problems, Problem{File: dir, Message: fmt.Sprintf("policy directory: %v", unwrapPath(err))})
			continue
		case !info.IsDir():
			problems = append(problems, Problem{File: dir, Message: "not a directory: --policy-dir takes a directory of .rego files"})
			continue
		}
		if err := readDir(dir, 0, opts.Tests, &files, &params); err != nil {
			problems = append(problems, Problem{File: dir, Message: err.Error()})
		}
	}
	src := &sources{params: map[string]any{}}
	from := map[string]string{}
	for _, f := range params {
		var doc map[string]any
		if err := yaml.Unmarshal(f.data, &doc); err != nil {
			problems = append(problems, Problem{File: f.name, Message: fmt.Sprintf("params: %v", err)})
			continue
		}
		for name, v := range doc {
			if prev, ok := from[name]; ok {
				problems = append(problems, Problem{File: f.name, Message: fmt.Sprintf("params for %s are already given in %s", name, prev)})
				continue
			}
			from[name] = f.name
			src.params[name] = v
		}
	}
	if len(problems) > 0 {
		return nil, &LoadError{Problems: problems}
	}
	src.rego = files
	h := sha256.New()
	for _, group := range [][]file{files, params} {
		for _, f := range group {
			fmt.Fprintf(h, "%s\x00%d\x00", f.name, len(f.data))
			h.Write(f.data)
		}
	}
	fmt.Fprintf(h, "tests=%v", opts.Tests)
	src.digest = hex.EncodeToString(h.Sum(nil))
	return src, nil
}

// readDir reads the .rego and params files under dir, in name order. It follows symbolic
// links (a mounted ConfigMap is links into ..data) and skips names starting with a dot.
func readDir(dir string, depth int, tests bool, files, params *[]file) error {
	if depth > maxDepth {
		return fmt.Errorf("more than %d directory levels (a symbolic link loop?)", maxDepth)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return unwrapPath(err)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Name() < entries[j].Name() })
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		info, err := os.Stat(path) // follows links
		if err != nil {
			if os.IsNotExist(err) {
				continue // a dangling link, mid-swap
			}
			return fmt.Errorf("%s: %w", path, unwrapPath(err))
		}
		if info.IsDir() {
			if err := readDir(path, depth+1, tests, files, params); err != nil {
				return err
			}
			continue
		}
		isRego := strings.HasSuffix(e.Name(), ".rego")
		test := strings.HasSuffix(e.Name(), "_test.rego")
		if !(isRego && (tests || !test)) && !isParams(e.Name()) {
			continue
		}
		if info.Size() > MaxFileSize {
			return fmt.Errorf("%s: %d bytes; policy files may be at most %d", path, info.Size(), MaxFileSize)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("%s: %w", path, unwrapPath(err))
		}
		f := file{name: path, data: data, test: test}
		if isRego {
			*files = append(*files, f)
		} else {
			*params = append(*params, f)
		}
	}
	return nil
}

// unwrapPath drops the path an *fs.PathError repeats.
func unwrapPath(err error) error {
	if pe, ok := err.(*fs.PathError); ok {
		return pe.Err
	}
	return err
}
