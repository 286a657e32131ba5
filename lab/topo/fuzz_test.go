package topo_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/lab/vlan"
)

// FuzzParse feeds the loader arbitrary files. It must never panic or hang;
// a file it accepts must hold together (every link end is an interface of an
// existing node, every VLAN has its parent), and every problem it reports
// must point inside the file.
//
//	go test ./lab/topo -run '^$' -fuzz FuzzParse -fuzztime 3m
func FuzzParse(f *testing.F) {
	seeds, _ := filepath.Glob("../../topologies/*.yml")
	more, _ := filepath.Glob("testdata/*.yml")
	for _, p := range append(seeds, more...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("name: a\ntopology: {nodes: {x: {interfaces: {eth1.5: {}}}}, links: [{endpoints: [x:eth1, x:eth2]}]}"))
	f.Add([]byte("name: &a a\ntopology: {nodes: {n: *a}}"))
	opts := lab.Options{}.TopoOptions()
	opts.LookupEnv = func(string) (string, bool) { return "", false }
	f.Fuzz(func(t *testing.T, data []byte) {
		top, err := topo.Parse(data, "f.yml", opts)
		lines := yamlLines(data)
		if !utf8.Valid(data) { // YAML may be UTF-16 too: bound the line by the size
			lines = len(data) + 1
		}
		if err != nil {
			var el topo.ErrorList
			if !errors.As(err, &el) || len(el) == 0 {
				t.Fatalf("error is not a non-empty ErrorList: %v", err)
			}
			for _, p := range el {
				if p.Pos.Line < 0 || p.Pos.Line > lines+1 || p.Msg == "" {
					t.Fatalf("problem outside the file (%d lines): %v", lines, p)
				}
			}
			return
		}
		for _, l := range top.Links {
			for _, ep := range []topo.Endpoint{l.A, l.B} {
				n := top.Node(ep.Node)
				if n == nil || n.Interface(ep.Iface) == nil {
					t.Fatalf("accepted a link to %s, which does not resolve", ep)
				}
			}
		}
		for _, n := range top.Nodes {
			for _, i := range n.Interfaces {
				if msg := topo.ValidIfName(i.Name); msg != "" {
					t.Fatalf("accepted %s", msg)
				}
				if i.Parent != "" && n.Interface(i.Parent) == nil {
					t.Fatalf("accepted %s:%s on parent %q, which is not there", n.Name, i.Name, i.Parent)
				}
				if tag := vlan.Of(i); tag != nil && (tag.ID < 1 || tag.ID > 4094) {
					t.Fatalf("accepted VLAN %s:%s with id %d", n.Name, i.Name, tag.ID)
				}
			}
		}
	})
}

// yamlLines counts lines as YAML does: it breaks them at \n, \r\n, a lone
// \r, and (YAML 1.1) at NEL, LS and PS.
func yamlLines(data []byte) int {
	lines := 1
	s := []rune(string(data))
	for i, r := range s {
		switch r {
		case '\n', '\u0085', '\u2028', '\u2029':
			lines++
		case '\r':
			if i+1 == len(s) || s[i+1] != '\n' {
				lines++
			}
		}
	}
	return lines
}
