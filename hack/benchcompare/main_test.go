package main

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestFindPairs(t *testing.T) {
	dir := t.TempDir()
	write := func(path, src string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, path), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a/a_test.go", "package a\nimport \"testing\"\nfunc BenchmarkX(b *testing.B) {}\nfunc BenchmarkY(b *testing.B) {}\nfunc BenchmarkZFloor(b *testing.B) {}\n")
	write("a/floor_test.go", "package a\nimport \"testing\"\nfunc BenchmarkXFloor(b *testing.B) {}\n")
	write("b/b_test.go", "package b\nimport \"testing\"\nfunc BenchmarkX(b *testing.B) {}\n") // its floor is in another package
	write("c/c_test.go", "package c\nimport \"testing\"\nfunc BenchmarkXFloor(b *testing.B) {}\n")
	got, err := findPairs([]string{dir}, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{filepath.Join(dir, "a"): {"BenchmarkX"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pairs %v, want %v", got, want)
	}
}

func TestPair(t *testing.T) {
	out := []byte(`goos: linux
BenchmarkH/serial-2         	    5757	    200000 ns/op	   64109 B/op	     261 allocs/op
BenchmarkH/parallel-2       	    6738	    150000 ns/op	      5000 reviews/s	   64120 B/op	     261 allocs/op
BenchmarkHFloor/serial-2    	    8522	    100000 ns/op	   15725 B/op	     158 allocs/op
BenchmarkHFloor/parallel-2  	   11748	    100000 ns/op	     10000 reviews/s	   15733 B/op	     158 allocs/op
BenchmarkH/serial-2         	    5757	    400000 ns/op	   64109 B/op	     261 allocs/op
BenchmarkHFloor/serial-2    	    8522	    100000 ns/op	   15725 B/op	     158 allocs/op
BenchmarkH/serial-2         	    5757	    220000 ns/op	   64109 B/op	     261 allocs/op
BenchmarkHFloor/serial-2    	    8522	    110000 ns/op	   15725 B/op	     158 allocs/op
BenchmarkP-2                	       3	3000000000 ns/op	       283.5 MiB-peak-RSS	   1000 B/op	      45 allocs/op
BenchmarkPFloor-2           	       3	2000000000 ns/op	  1800000000 B/op	31300000 allocs/op
BenchmarkAlone-2            	    8522	    110000 ns/op
PASS
`)
	rows := pair("pkg/p", parse(out))
	want := []row{
		{name: "pkg/p H/parallel", ns: 150000, floorNs: 100000, allocs: 261, floorAll: 158, extra: "reviews/s 5000 vs 10000 (0.50x)"},
		{name: "pkg/p H/serial", ns: 220000, floorNs: 100000, allocs: 261, floorAll: 158},
		// A measure the floor does not have is shown alone.
		{name: "pkg/p P", ns: 3e9, floorNs: 2e9, allocs: 45, floorAll: 31300000, extra: "MiB-peak-RSS 284"},
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("rows\n%+v\nwant\n%+v", rows, want)
	}
}
