package lab_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/erlab-dev/erlab/lab/macsec"
	"github.com/erlab-dev/erlab/lab/vlan"

	"github.com/google/go-cmp/cmp"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/erlab-dev/erlab/lab/topo"
)

func TestGraph(t *testing.T) {
	top, err := lab.Load("../topologies/er-peerings-vlan.yml", lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, format := range lab.GraphFormats {
		var b bytes.Buffer
		if err := lab.Graph(&b, top, format); err != nil {
			t.Fatal(err)
		}
		labtest.Golden(t, "er-peerings-vlan."+format, b.Bytes())
	}
	if err := lab.Graph(&bytes.Buffer{}, top, "svg"); err == nil || !strings.Contains(err.Error(), "mermaid, dot") {
		t.Errorf("unknown format: %v", err)
	}
	// Host links end at the host, drawn once.
	top, err = topo.Parse([]byte("name: hl\ntopology:\n  nodes: {a: {}}\n  links: [{endpoints: [a:eth1, host:hl-a1]}, {endpoints: [a:eth2, host:hl-a2]}]\n"), "hl.yml", lab.Options{}.TopoOptions())
	if err != nil {
		t.Fatal(err)
	}
	for format, want := range map[string][]string{
		"mermaid": {"  h__host[(\"the host\")]\n", "  n_a ---|\"eth1 — hl-a1\"| h__host\n", "  n_a ---|\"eth2 — hl-a2\"| h__host\n"},
		"dot":     {"  \"(host)\" [label=\"the host\", shape=cylinder];\n", "  \"a\" -- \"(host)\" [taillabel=\"eth1\", headlabel=\"hl-a1\"];\n"},
	} {
		var b bytes.Buffer
		if err := lab.Graph(&b, top, format); err != nil {
			t.Fatal(err)
		}
		for _, w := range want {
			if strings.Count(b.String(), w) != 1 {
				t.Errorf("%s graph of host links, want %q once:\n%s", format, w, b.String())
			}
		}
	}
}

func TestNeeds(t *testing.T) {
	top, err := lab.Load("../topologies/er-peerings-vlan.yml", lab.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []lab.Need{
		{Feature: kernel.Veth, Where: []string{"onprem:eth1", "ce:eth1", "pe:eth2", "msee:eth2"}},
		{Feature: kernel.Bridge, Where: []string{"pe"}},
		{Feature: vlan.KernelDot1Q, Where: []string{"ce:eth1.100", "ce:eth1.200", "msee:eth1.100", "msee:eth1.200"}},
	}
	// Features compare by identity: each is declared once.
	if diff := cmp.Diff(want, lab.Needs(top, lab.Options{}), cmp.Comparer(func(a, b *kernel.Feature) bool { return a == b })); diff != "" {
		t.Errorf("needs (-want +got):\n%s", diff)
	}
}

func TestMissingFeaturesMessage(t *testing.T) {
	// The suggested command works from anywhere: absolute paths into the
	// source tree, found above the working directory (here, lab/).
	root, _ := filepath.Abs("..")
	e := &lab.MissingFeaturesError{
		Kernel: "6.18.44", File: "/srv/labs/x.yml",
		Missing: []lab.Need{{Feature: macsec.KernelMACsec, Where: []string{"a:m0", "b:m0", "c:m0", "d:m0", "e:m0", "f:m0"}}},
		Reasons: map[*kernel.Feature]error{macsec.KernelMACsec: errors.New("operation not supported")},
	}
	want := `this kernel (6.18.44) lacks what the lab needs:
  MACsec (CONFIG_MACSEC, operation not supported), needed by a:m0, b:m0, c:m0, d:m0 and 2 more
run the lab in erlab's microVM, which boots Debian's kernel with these as modules:
  ` + root + `/scripts/vm-run -- ` + root + `/scripts/demo /srv/labs/x.yml
or on a host (or the Vagrant box) whose kernel has them`
	if diff := cmp.Diff(want, e.Error()); diff != "" {
		t.Errorf("message (-want +got):\n%s", diff)
	}
	// Away from the tree, with no build-time path: say where to run it.
	t.Chdir(t.TempDir())
	if got := e.Error(); !strings.Contains(got, "  scripts/vm-run -- scripts/demo /srv/labs/x.yml   (from erlab's source tree)") {
		t.Errorf("outside the source tree:\n%s", got)
	}
}

func TestNetNSName(t *testing.T) {
	if got := lab.NetNSName("er-lab", "ce1"); got != "erlab-er-lab.ce1" {
		t.Errorf("NetNSName = %q", got)
	}
}
