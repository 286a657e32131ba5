package topo

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// KindSet is what the loader needs to know about node kinds: which exist, and
// the rules each one adds. The nodes registry implements it; topo does not
// import it, so kinds can be added without touching the loader.
type KindSet interface {
	// Kinds lists the known kind names, for error messages.
	Kinds() []string
	// Known reports whether a kind exists.
	Known(kind string) bool
	// PrepareNode applies what a kind says of its nodes (a switch, one
	// that forwards) as soon as the node exists, before anything reads it.
	PrepareNode(n *Node)
	// CheckNode applies the node's kind-specific rules, once the node is
	// resolved.
	CheckNode(n *Node, r Reporter)
}

// Reporter takes the problems a kind finds in a node.
type Reporter interface {
	Errorf(pos Pos, format string, args ...any)
	Warnf(pos Pos, format string, args ...any)
	// LookupEnv reads the environment the file is read against (${VAR},
	// and secrets given by env:).
	LookupEnv(name string) (string, bool)
}

func (ps *problems) Errorf(pos Pos, format string, args ...any) { ps.errorf(pos, format, args...) }
func (ps *problems) Warnf(pos Pos, format string, args ...any)  { ps.warnf(pos, format, args...) }
func (ps *problems) LookupEnv(name string) (string, bool)       { return ps.lookup(name) }

// Options tune Load.
type Options struct {
	// Kinds validates node kinds; required.
	Kinds KindSet
	// Extensions are the features whose keys and rules the file is read
	// with, in the order their hooks run.
	Extensions []Extension
	// LookupEnv resolves ${VAR} references; os.LookupEnv when nil.
	LookupEnv func(string) (string, bool)
	// GenerateKeys makes the key files a topology names and that do not
	// exist (random, of the length their cipher takes, mode 0600), each
	// reported as a warning, instead of refusing the file.
	GenerateKeys bool
}

// MaxFileSize bounds what Load reads: a topology is a page or two of YAML.
const MaxFileSize = 4 << 20

// Load reads, validates and resolves the topology file at path. On any
// problem it returns an ErrorList holding all of them, in file order, each
// as file:line:col: message; warnings ride on the returned Topology.
func Load(path string, opts Options) (*Topology, error) {
	st, err := os.Stat(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, ErrorList{{File: path, Msg: "topology file not found (give its path with -t FILE)"}}
		}
		return nil, ErrorList{{File: path, Msg: fmt.Sprintf("cannot read topology file: %v", err)}}
	}
	if st.IsDir() {
		return nil, ErrorList{{File: path, Msg: "is a directory, not a topology file"}}
	}
	if st.Size() > MaxFileSize {
		return nil, ErrorList{{File: path, Msg: fmt.Sprintf("topology file is %d bytes; more than %d is not a topology", st.Size(), MaxFileSize)}}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, ErrorList{{File: path, Msg: fmt.Sprintf("cannot read topology file: %v", err)}}
	}
	t, err := Parse(data, path, opts)
	if err != nil {
		return nil, err
	}
	if abs, err := filepath.Abs(path); err == nil {
		t.File = abs
	}
	return t, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// Parse validates and resolves a topology held in memory; file names it in
// messages.
func Parse(data []byte, file string, opts Options) (*Topology, error) {
	ps := &problems{file: file}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		msg := err.Error()
		pos := Pos{}
		if m := yamlLine.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			pos, msg = Pos{Line: line, Col: 1}, m[2]
		}
		ps.errorf(pos, "not valid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
		return nil, ps.errs
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		ps.errorf(Pos{}, "topology file is empty")
		return nil, ps.errs
	}
	if top := root.Content[0]; top.Kind != yaml.MappingNode {
		ps.errorf(posOf(top), "expected a mapping with name: and topology:, got %s", describe(top))
		return nil, ps.errs
	}
	lookup := opts.LookupEnv
	if lookup == nil {
		lookup = defaultLookup
	}
	ps.lookup = lookup
	ps.generate = opts.GenerateKeys
	d := &decoder{ps: ps, lookup: lookup, keys: keysOf(opts.Extensions)}
	expandModels(root.Content[0], d, opts.Extensions)
	var spec fileSpec
	d.decode(&root, reflect.ValueOf(&spec).Elem(), "")
	if nameNode := findKey(root.Content[0], "name"); nameNode != nil {
		spec.NamePos = posOf(nameNode)
	}
	t := resolve(&spec, ps, opts.Kinds, opts.Extensions)
	if len(ps.errs) > 0 {
		return nil, sorted(ps.errs)
	}
	for k, v := range d.kept {
		t.Ext[k] = v
	}
	t.Warnings = sorted(ps.warnings)
	return t, nil
}

func findKey(m *yaml.Node, key string) *yaml.Node {
	if m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

// UnmarshalYAML reads "192.0.2.1/30" or "2001:db8::1/64".
func (a *AddrSpec) UnmarshalYAML(n *yaml.Node) error {
	a.Pos = posOf(n)
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("expected an address with prefix length such as 192.0.2.1/30, got %s", describe(n))
	}
	p, err := netip.ParsePrefix(n.Value)
	if err != nil {
		if _, aerr := netip.ParseAddr(n.Value); aerr == nil {
			return fmt.Errorf("address %q has no prefix length (write it as %s/24, %s/64, ...)", n.Value, n.Value, n.Value)
		}
		return fmt.Errorf("%q is not an address with prefix length such as 192.0.2.1/30", n.Value)
	}
	if p.Addr().Zone() != "" {
		return fmt.Errorf("address %q: zones are not allowed", n.Value)
	}
	a.Prefix = p
	return nil
}

// UnmarshalYAML reads "node:iface", or containerlab's extended form
// {node: N, interface: I, mac: M}.
func (e *endpointSpec) UnmarshalYAML(n *yaml.Node) error {
	e.Pos = posOf(n)
	switch n.Kind {
	case yaml.ScalarNode:
		e.Value = n.Value
		return nil
	case yaml.MappingNode:
		var node, iface string
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if v.Kind != yaml.ScalarNode {
				return fmt.Errorf("endpoint %s: expected a string, got %s", k.Value, describe(v))
			}
			switch k.Value {
			case "node":
				node = v.Value
			case "interface":
				iface = v.Value
			case "mac":
				e.MAC, e.MACPos = v.Value, posOf(v)
			default:
				return fmt.Errorf("endpoint: unknown key %q (an endpoint has node, interface and mac)", k.Value)
			}
		}
		if node == "" || iface == "" {
			return fmt.Errorf("endpoint: give node: and interface:")
		}
		e.Value = node + ":" + iface
		return nil
	}
	return fmt.Errorf("expected \"node:interface\" or {node: N, interface: I}, got %s", describe(n))
}

// ignored is a containerlab key erlab accepts and does not use.
type ignored struct {
	set bool
	pos Pos
}

func (ig *ignored) decodeYAML(_ *decoder, n *yaml.Node, _ string) {
	ig.set, ig.pos = true, posOf(n)
}

// refused is a key of containerlab's that erlab reads only to refuse it
// where it is written; a node inherits it like any key.
type refused struct {
	set bool
	pos Pos
}

func (r *refused) decodeYAML(_ *decoder, n *yaml.Node, _ string) {
	r.set, r.pos = true, posOf(n)
}

func (r *refused) inheritFrom(lower any) {
	if l := lower.(refused); !r.set {
		*r = l
	}
}
