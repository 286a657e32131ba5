package lab_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/labtest"
)

// TestPlanGolden deploys every shipped topology against the recording
// fake (kernel.Recorder), without root: each kernel operation of the plan
// is written as its iproute2 equivalent and the whole is diffed against
// testdata/plan/NAME.txt (go test -update rewrites them). One worker, so
// that each namespace's operations come in one order. No key may appear.
func TestPlanGolden(t *testing.T) {
	files, _ := filepath.Glob("../topologies/*.yml")
	if len(files) < 5 {
		t.Fatalf("found %d topologies", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".yml")
		t.Run(name, func(t *testing.T) {
			path := labtest.WithKeys(t, f)
			top, err := lab.Load(path, lab.Options{})
			if err != nil {
				t.Fatal(err)
			}
			rec := &kernel.Recorder{}
			if err := lab.Deploy(context.Background(), top, lab.Options{Ops: rec, StateRoot: t.TempDir(), Workers: 1}); err != nil {
				t.Fatal(err)
			}
			got := rec.String()
			for _, k := range keysOf(t, filepath.Dir(path)) {
				if strings.Contains(got, k) {
					t.Fatalf("the plan of %s shows a key", name)
				}
			}
			labtest.Golden(t, filepath.Join("plan", name+".txt"), []byte(got))
		})
	}
}

// keysOf reads the key files WithKeys made.
func keysOf(t *testing.T, dir string) []string {
	var out []string
	ents, _ := os.ReadDir(filepath.Join(dir, "keys"))
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, "keys", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strings.TrimSpace(string(b)))
	}
	return out
}
