package expressroute_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/erlab-dev/erlab/lab/topo"
)

// scenarios are the shipped topologies written on the model.
func scenarios(t *testing.T) []string {
	files, _ := filepath.Glob("../../topologies/*.yml")
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(b), "\nexpressroute:") {
			out = append(out, f)
		}
	}
	if len(out) == 0 {
		t.Fatal("no shipped topology uses expressroute:")
	}
	return out
}

// TestExpandGolden: each scenario's expansion (erlab expand) is diffed
// against testdata/NAME.yml (go test -update rewrites them), and the
// expansion is a topology of its own that loads into the very lab the
// declaration does: the same nodes, interfaces, addresses, links and every
// feature's model, positions aside.
func TestExpandGolden(t *testing.T) {
	for _, f := range scenarios(t) {
		name := strings.TrimSuffix(filepath.Base(f), ".yml")
		t.Run(name, func(t *testing.T) {
			path := labtest.WithKeys(t, f)
			got, err := lab.Expand(path, lab.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(got), "expressroute:") {
				t.Errorf("the expansion still holds the expressroute: key")
			}
			labtest.Golden(t, name+".yml", got)
			plain := filepath.Join(filepath.Dir(path), "plain.yml")
			if err := os.WriteFile(plain, got, 0o600); err != nil {
				t.Fatal(err)
			}
			want, err := lab.Load(path, lab.Options{})
			if err != nil {
				t.Fatal(err)
			}
			from, err := lab.Load(plain, lab.Options{})
			if err != nil {
				t.Fatalf("the expansion does not load on its own: %v", err)
			}
			if len(want.Warnings) > 0 {
				t.Errorf("a shipped scenario loads with warnings: %v", want.Warnings)
			}
			if len(from.Nodes) < 6 || len(from.Nodes) != len(want.Nodes) {
				t.Fatalf("%d nodes from the expansion, %d from the declaration", len(from.Nodes), len(want.Nodes))
			}
			// Where things were written differs, of course: positions, and
			// the lines drill steps keep for messages.
			where := cmp.FilterPath(func(p cmp.Path) bool {
				sf, ok := p.Last().(cmp.StructField)
				return ok && (sf.Name() == "Line" || strings.HasSuffix(sf.Name(), "Pos"))
			}, cmp.Ignore())
			// The declaration is kept beside the lab it makes; the plain
			// file has none.
			if want.Ext["expressroute"] == nil {
				t.Errorf("the declared lab keeps no model")
			}
			delete(want.Ext, "expressroute")
			opts := cmp.Options{where, cmpopts.IgnoreTypes(topo.Pos{}), cmpopts.IgnoreFields(topo.Topology{}, "File"), cmpopts.EquateEmpty(), cmp.Exporter(func(reflect.Type) bool { return true })}
			if diff := cmp.Diff(want, from, opts...); diff != "" {
				t.Errorf("the expansion loads into another lab (-declared +expanded):\n%s", diff)
			}
		})
	}
}

// TestCircuitsView: erlab graph --view circuits of two scenarios, in both
// formats, against golden files; a plain topology has no circuits to draw.
func TestCircuitsView(t *testing.T) {
	for _, name := range []string{"er-direct-circuits", "er-vpn-coexistence", "er-global-reach", "er-microsoft-peering"} {
		for _, format := range lab.GraphFormats {
			t.Run(name+"."+format, func(t *testing.T) {
				top, err := lab.Load(labtest.WithKeys(t, "../../topologies/"+name+".yml"), lab.Options{})
				if err != nil {
					t.Fatal(err)
				}
				var b strings.Builder
				if err := lab.GraphView(&b, top, "circuits", format, lab.Options{}); err != nil {
					t.Fatal(err)
				}
				labtest.Golden(t, filepath.Join("circuits", name+"."+format), []byte(b.String()))
			})
		}
	}
	plain, err := lab.Load("../../topologies/er-bgp.yml", lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := lab.GraphView(&b, plain, "circuits", "mermaid", lab.Options{}); err == nil || !strings.Contains(err.Error(), "declares no expressroute:") {
		t.Errorf("a plain topology's circuits: %v", err)
	}
}
