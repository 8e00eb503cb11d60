package cluster

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rrguard/rrguard/pkg/model"
	"github.com/rrguard/rrguard/pkg/validate"
)

// FuzzLoadReader: any bytes either load or are an InputError naming the source; what loads
// builds a state the engine can audit. Nothing panics.
func FuzzLoadReader(f *testing.F) {
	seeds, _ := filepath.Glob("../../examples/seed/*.yaml")
	var all []byte
	for _, p := range seeds {
		raw, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
		all = append(append(all, raw...), "\n---\n"...)
	}
	f.Add(all)
	for _, s := range []string{
		"", "---\n", "\x00", "# only a comment\n",
		`{"apiVersion":"v1","kind":"List","items":[{"apiVersion":"v1","kind":"Node","metadata":{"name":"a","annotations":{"projectcalico.org/IPv4Address":"10.0.0.1/24"}}}]}`,
		"apiVersion: crd.projectcalico.org/v1\nkind: BGPPeer\nmetadata: {name: p}\nspec:\n  nodeSelector: !has(x)\n",
		"apiVersion: crd.projectcalico.org/v1\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: false, asNumber: 4294967296}\n",
		"apiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: p}\nspec: {peerIP: '10.0.0.1:179', asNumber: 64512, node: a, nodeSelector: all()}\n",
		"a: &a [*a, *a]\n", "apiVersion: v1\nkind: Node\nmetadata: {name: [1]}\n",
	} {
		f.Add([]byte(s))
	}
	engine := validate.New(validate.DefaultConfig())
	f.Fuzz(func(t *testing.T, data []byte) {
		m := &Manifests{Sources: map[string]Source{}}
		if err := m.LoadReader("fuzz.yaml", bytes.NewReader(data)); err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Source == "" {
				t.Fatalf("error %v (%T) is not an InputError naming its source", err, err)
			}
			return
		}
		if len(m.Objects) == 0 && len(m.Notes) == 0 {
			t.Fatal("loaded without error, without an object and without a note")
		}
		st := m.State()
		if len(m.Objects) <= 64 {
			engine.Audit(context.Background(), model.NewSnapshot(st))
		}
	})
}
