package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestHostileInput: what is not a manifest is an input error (exit 2) that names the file and
// what is wrong with it, promptly; nothing hangs and nothing prints a stack trace.
func TestHostileInput(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifoDir := filepath.Join(dir, "with-fifo")
	write("with-fifo/nodes.yaml", []byte("apiVersion: v1\nkind: Node\nmetadata: {name: a}\n"))
	if err := syscall.Mkfifo(filepath.Join(fifoDir, "pipe.yaml"), 0o644); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "s.yaml")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cases := map[string]struct {
		args []string
		want []string // in stderr
	}{
		"a named pipe in a -f directory": {args: []string{"validate", "-f", fifoDir}, want: []string{filepath.Join(fifoDir, "pipe.yaml"), "a named pipe", "only regular files"}},
		"a named pipe as -f":             {args: []string{"validate", "-f", filepath.Join(fifoDir, "pipe.yaml")}, want: []string{"a named pipe"}},
		"a device":                       {args: []string{"validate", "-f", "/dev/zero"}, want: []string{"/dev/zero", "a device"}},
		"a socket":                       {args: []string{"validate", "-f", sock}, want: []string{sock, "a socket"}},
		"1 MiB of NUL bytes":             {args: []string{"validate", "-f", write("nul.yaml", make([]byte, 1<<20))}, want: []string{"nul.yaml", "NUL byte at offset 0"}},
		"an empty file":                  {args: []string{"validate", "-f", write("empty.yaml", nil)}, want: []string{"empty.yaml", "no YAML or JSON document"}},
		"only comments":                  {args: []string{"validate", "-f", write("comments.yaml", []byte("# nothing\n---\n# here\n"))}, want: []string{"comments.yaml", "no YAML or JSON document"}},
		"larger than the limit":          {args: []string{"validate", "-f", write("big.yaml", []byte(strings.Repeat("# pad\n", 3<<20)))}, want: []string{"big.yaml", "limit of 16 MiB"}},
		"a review larger than the limit": {args: []string{"review", "--state", "../../examples/seed", "-f", write("big.json", []byte(`{"request":{"uid":"`+strings.Repeat("x", 17<<20)+`"}}`))}, want: []string{"big.json", "limit of 16 MiB"}},
		"a review from a named pipe":     {args: []string{"review", "--state", "../../examples/seed", "-f", filepath.Join(fifoDir, "pipe.yaml")}, want: []string{"a named pipe"}},
		"a review without a request":     {args: []string{"review", "--state", "../../examples/seed", "-f", write("noreq.json", []byte(`{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}`))}, want: []string{"has no request"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			type result struct {
				code        int
				out, errOut string
			}
			done := make(chan result, 1)
			go func() {
				code, out, errOut := runCLI(t, "", c.args...)
				done <- result{code, out, errOut}
			}()
			select {
			case r := <-done:
				if r.code != exitUsage {
					t.Errorf("exit %d, want %d\n%s%s", r.code, exitUsage, r.out, r.errOut)
				}
				for _, w := range c.want {
					if !strings.Contains(r.errOut, w) {
						t.Errorf("stderr does not say %q: %s", w, r.errOut)
					}
				}
				if strings.Contains(r.errOut, "goroutine") || len(r.errOut) > 1000 {
					t.Errorf("stderr is not one short message: %.300s", r.errOut)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("rrguard hangs on it")
			}
		})
	}
}

// TestReviewDeleteOfUnknownNode: deleting a node the state does not hold is allowed (nothing
// to judge); it used to panic with a stack trace.
func TestReviewDeleteOfUnknownNode(t *testing.T) {
	review := `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u3","kind":{"group":"","version":"v1","kind":"Node"},
"resource":{"group":"","version":"v1","resource":"nodes"},"name":"ghost","operation":"DELETE",
"oldObject":{"apiVersion":"v1","kind":"Node","metadata":{"name":"ghost","annotations":{"projectcalico.org/IPv4Address":"10.30.9.9/22","projectcalico.org/RouteReflectorClusterID":"1.0.0.1"}}}}}`
	code, out, errOut := runCLI(t, review, "review", "--state", seedDir)
	if code != exitOK || !strings.Contains(out, `"allowed": true`) || errOut != "" {
		t.Errorf("exit %d\n%s%s", code, out, errOut)
	}
}
