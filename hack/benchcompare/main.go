// Command benchcompare prints how close each measured path is to its floor, measured in the
// same run: a benchmark BenchmarkX is paired with BenchmarkXFloor of its package (the same
// work done by the cheapest thing that could do it: a no-op webhook over the same HTTPS
// stack, a bare json.Unmarshal of the same review, …), sub-benchmark by sub-benchmark. Pairs
// are found by name in the module's *_test.go files, so a new pair needs no change here. It
// runs each package's benchmarks with floors (`go test -run '^$' -bench '^(X|XFloor)$'
// -benchmem`, compiled once, -count rounds) and prints name, ns/op, the floor's ns/op, their
// ratio and the allocations of both.
//
//	go run ./hack/benchcompare [-benchtime 1s] [-count 1] [-run REGEXP] [DIR...]
package main

import (
	"bufio"
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
)

// FloorSuffix names a floor benchmark: BenchmarkX's is BenchmarkXFloor.
const FloorSuffix = "Floor"

func main() {
	benchtime := flag.String("benchtime", "1s", "go test -benchtime")
	count := flag.Int("count", 1, "rounds; each runs a benchmark and its floor, and the median of the rounds is reported")
	only := flag.String("run", "", "only pairs whose benchmark name matches this regular expression")
	flag.Parse()
	dirs := flag.Args()
	if len(dirs) == 0 {
		dirs = []string{"."}
	}
	var filter *regexp.Regexp
	if *only != "" {
		var err error
		if filter, err = regexp.Compile(*only); err != nil {
			fmt.Fprintln(os.Stderr, "benchcompare: -run:", err)
			os.Exit(2)
		}
	}
	pairs, err := findPairs(dirs, filter)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchcompare:", err)
		os.Exit(2)
	}
	if len(pairs) == 0 {
		fmt.Fprintln(os.Stderr, "benchcompare: no benchmark has a floor (BenchmarkX with BenchmarkX"+FloorSuffix+")")
		os.Exit(2)
	}
	var rows []row
	failed := false
	for _, dir := range sortedKeys(pairs) {
		results, err := run(dir, pairs[dir], *benchtime, *count)
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchcompare: %s: %v\n", dir, err)
			failed = true
			continue
		}
		rows = append(rows, pair(dir, results)...)
	}
	print(os.Stdout, rows)
	if failed {
		os.Exit(1)
	}
}

// findPairs returns, per package directory, the benchmarks that have a floor.
func findPairs(roots []string, filter *regexp.Regexp) (map[string][]string, error) {
	benches := map[string]map[string]bool{} // dir -> benchmark names
	fset := token.NewFileSet()
	for _, root := range roots {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				if name := d.Name(); path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
					return filepath.SkipDir
				}
				return nil
			}
			if !strings.HasSuffix(path, "_test.go") {
				return nil
			}
			f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			for _, decl := range f.Decls {
				fn, ok := decl.(*ast.FuncDecl)
				if !ok || fn.Recv != nil || !strings.HasPrefix(fn.Name.Name, "Benchmark") {
					continue
				}
				dir := filepath.Dir(path)
				if benches[dir] == nil {
					benches[dir] = map[string]bool{}
				}
				benches[dir][fn.Name.Name] = true
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	out := map[string][]string{}
	for dir, names := range benches {
		for name := range names {
			if strings.HasSuffix(name, FloorSuffix) || !names[name+FloorSuffix] || (filter != nil && !filter.MatchString(name)) {
				continue
			}
			out[dir] = append(out[dir], name)
		}
		slices.Sort(out[dir])
	}
	return out, nil
}

// result is one benchmark line: its name without the -GOMAXPROCS suffix and its measures.
type result struct {
	name   string
	ns     []float64
	allocs float64
	extra  map[string][]float64 // custom units, e.g. reviews/s
}

var procsSuffix = regexp.MustCompile(`-\d+$`)

// run compiles the package's tests once and runs the pairs' benchmarks count times, each
// round X and its floor one after the other, so that both see the same load.
func run(dir string, names []string, benchtime string, count int) (map[string]*result, error) {
	tmp, err := os.MkdirTemp("", "benchcompare-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "bench.test")
	build := exec.Command("go", "test", "-c", "-o", bin, "./"+filepath.ToSlash(dir))
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return nil, fmt.Errorf("go test -c: %w", err)
	}
	re := make([]string, 0, 2*len(names))
	for _, n := range names {
		re = append(re, regexp.QuoteMeta(n), regexp.QuoteMeta(n+FloorSuffix))
	}
	args := []string{"-test.run", "^$", "-test.bench", "^(" + strings.Join(re, "|") + ")$", "-test.benchmem", "-test.benchtime", benchtime}
	fmt.Fprintf(os.Stderr, "%s: %s %s (%d rounds)\n", dir, filepath.Base(bin), strings.Join(args, " "), count)
	var out bytes.Buffer
	for range count {
		cmd := exec.Command(bin, args...)
		cmd.Dir = dir // as go test runs it: testdata is relative to the package
		cmd.Stdout, cmd.Stderr = &out, os.Stderr
		if err := cmd.Run(); err != nil {
			return nil, fmt.Errorf("%w\n%s", err, out.String())
		}
	}
	return parse(out.Bytes()), nil
}

// parse reads `go test -bench` output.
func parse(out []byte) map[string]*result {
	results := map[string]*result{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		name := procsSuffix.ReplaceAllString(f[0], "")
		r := results[name]
		if r == nil {
			r = &result{name: name, extra: map[string][]float64{}}
			results[name] = r
		}
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			switch unit := f[i+1]; unit {
			case "ns/op":
				r.ns = append(r.ns, v)
			case "allocs/op":
				r.allocs = v
			case "B/op":
			default:
				r.extra[unit] = append(r.extra[unit], v)
			}
		}
	}
	return results
}

type row struct {
	name             string
	ns, floorNs      float64
	allocs, floorAll float64
	extra            string
}

// pair matches each result BenchmarkX[/sub] with BenchmarkXFloor[/sub].
func pair(dir string, results map[string]*result) []row {
	var rows []row
	for _, name := range sortedKeys(results) {
		top, sub, _ := strings.Cut(name, "/")
		if strings.HasSuffix(top, FloorSuffix) {
			continue
		}
		floorName := top + FloorSuffix
		if sub != "" {
			floorName += "/" + sub
		}
		r, fl := results[name], results[floorName]
		if fl == nil || len(r.ns) == 0 || len(fl.ns) == 0 {
			continue
		}
		var extra []string
		for _, unit := range sortedKeys(r.extra) {
			v := median(r.extra[unit])
			if fv := fl.extra[unit]; len(fv) > 0 && median(fv) != 0 {
				f := median(fv)
				extra = append(extra, fmt.Sprintf("%s %.0f vs %.0f (%.2fx)", unit, v, f, v/f))
			} else {
				extra = append(extra, fmt.Sprintf("%s %.0f", unit, v))
			}
		}
		rows = append(rows, row{name: filepath.ToSlash(dir) + " " + strings.TrimPrefix(name, "Benchmark"),
			ns: median(r.ns), floorNs: median(fl.ns), allocs: r.allocs, floorAll: fl.allocs, extra: strings.Join(extra, "; ")})
	}
	return rows
}

func print(w *os.File, rows []row) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "benchmark\tns/op\tfloor ns/op\tratio\tallocs/op\tfloor allocs/op\t\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f\t%.2fx\t%.0f\t%.0f\t  %s\t\n", r.name, r.ns, r.floorNs, r.ns/r.floorNs, r.allocs, r.floorAll, r.extra)
	}
	tw.Flush()
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	sort.Float64s(s)
	return s[len(s)/2]
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
