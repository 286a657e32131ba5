package topo

import (
	"bytes"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The loader's hook for a model: a feature whose key at the top of the file
// declares in a few lines what stands for many nodes and links (a whole
// ExpressRoute circuit). Before anything is decoded, the feature reads its
// key and writes the plain topology it means into the file's tree — nodes
// under topology.nodes, links under topology.links — and the key is taken
// out. From there the file is read as if the user had written the plain
// topology: every core and feature rule applies to what the model made, and
// `erlab expand` prints it. What the model makes carries the position of the
// declaration it came from, so that a rule broken in the expansion points at
// the lines the user wrote.

// ExpandHook is a feature with a model key.
type ExpandHook interface {
	// ExpandKey is the key, at the top of the file, beside name: and
	// topology:.
	ExpandKey() string
	// Expand reads the key through x and adds what it stands for.
	Expand(x *Expansion)
}

// Expansion is what a model's hook works with: its key's value, the nodes
// the file declares itself, and the tree it adds to.
type Expansion struct {
	// At is where the key was written.
	At    Pos
	d     *decoder
	val   *yaml.Node
	top   *yaml.Node // the file's top mapping
	nodes *yaml.Node // topology.nodes
	links *yaml.Node // topology.links
	// declared are the nodes the file writes itself; added, the model's.
	declared map[string]Pos
	added    map[string]Pos
}

// Reporter takes the model's problems and warnings.
func (x *Expansion) Reporter() Reporter { return x.d.ps }

// Decode reads the key's value into v (a pointer) by the rules every key
// is read with: positions (Pos fields), ${VAR}, unknown keys refused.
// Values the model only passes on are best held as Raw, so that ${VAR}
// stays a reference in what is printed.
func (x *Expansion) Decode(v any) {
	x.d.decode(x.val, reflect.ValueOf(v).Elem(), x.key())
}

func (x *Expansion) key() string {
	return x.d.expandKey
}

// AddNode adds a node; spec is anything that encodes to a node's YAML (a
// struct with yaml tags, a map). comment is written above it in `erlab
// expand`'s output. A name taken by the file's own nodes or by the model
// already is an error at at.
func (x *Expansion) AddNode(name string, at Pos, comment string, spec any) {
	if p, ok := x.declared[name]; ok {
		x.d.ps.errorf(p, "node %q is also made by %s: at line %d; rename the node", name, x.key(), at.Line)
		return
	}
	if p, ok := x.added[name]; ok {
		x.d.ps.errorf(at, "%s: node %q is made twice (first for line %d)", x.key(), name, p.Line)
		return
	}
	x.added[name] = at
	k := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: name, HeadComment: comment}
	v := x.encode(spec, at)
	stamp(k, at)
	x.nodes.Content = append(x.nodes.Content, k, v)
}

// AddLink adds an entry to topology.links.
func (x *Expansion) AddLink(at Pos, comment string, spec any) {
	v := x.encode(spec, at)
	v.HeadComment = comment
	x.links.Content = append(x.links.Content, v)
}

// Keep keeps a value the model resolved from its declaration in the
// topology's Ext, under the key's name, for the feature's actions and views
// (the plain topology of erlab expand has none: it is written out).
func (x *Expansion) Keep(v any) {
	if x.d.kept == nil {
		x.d.kept = map[string]any{}
	}
	x.d.kept[x.key()] = v
}

// AddItem adds an entry to a list under topology: that a feature reads
// (tunnels:), making the list when the file has none.
func (x *Expansion) AddItem(key string, at Pos, comment string, spec any) {
	body := child(x.top, "topology", yaml.MappingNode)
	list := child(body, key, yaml.SequenceNode)
	if list == nil {
		x.d.ps.errorf(at, "%s: topology: %s: is not a list in this file; the model adds to it", x.key(), key)
		return
	}
	v := x.encode(spec, at)
	v.HeadComment = comment
	list.Content = append(list.Content, v)
}

func (x *Expansion) encode(spec any, at Pos) *yaml.Node {
	n := toNode(reflect.ValueOf(spec))
	if n == nil {
		n = &yaml.Node{Kind: yaml.MappingNode}
	}
	stamp(n, at)
	compact(n)
	return n
}

// Ordered is a mapping whose keys keep the order they were added in (a
// node's interfaces), for what a model writes.
type Ordered []KV

// KV is one key of an Ordered mapping.
type KV struct {
	K string
	V any
}

var (
	rawType     = reflect.TypeOf(Raw{})
	orderedType = reflect.TypeOf(Ordered(nil))
)

// toNode builds the YAML of a model's value: structs by their yaml tags
// (omitempty honoured), Ordered and maps (sorted) as mappings, slices as
// lists, Raw as written (with its own position). nil for what is left out.
func toNode(v reflect.Value) *yaml.Node {
	for v.Kind() == reflect.Interface || v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	switch {
	case v.Type() == rawType:
		r := v.Interface().(Raw)
		return r.node
	case v.Type() == orderedType:
		m := &yaml.Node{Kind: yaml.MappingNode}
		for _, kv := range v.Interface().(Ordered) {
			if c := toNode(reflect.ValueOf(kv.V)); c != nil {
				m.Content = append(m.Content, scalar("!!str", kv.K), c)
			}
		}
		return m
	}
	switch v.Kind() {
	case reflect.Struct:
		m := &yaml.Node{Kind: yaml.MappingNode}
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			name, opts, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			if name == "" || name == "-" {
				continue
			}
			f := v.Field(i)
			if strings.Contains(opts, "omitempty") && f.IsZero() {
				continue
			}
			if c := toNode(f); c != nil {
				m.Content = append(m.Content, scalar("!!str", name), c)
			}
		}
		return m
	case reflect.Map:
		m := &yaml.Node{Kind: yaml.MappingNode}
		keys := v.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		for _, k := range keys {
			if c := toNode(v.MapIndex(k)); c != nil {
				m.Content = append(m.Content, scalar("!!str", k.String()), c)
			}
		}
		return m
	case reflect.Slice, reflect.Array:
		s := &yaml.Node{Kind: yaml.SequenceNode}
		for i := 0; i < v.Len(); i++ {
			if c := toNode(v.Index(i)); c != nil {
				s.Content = append(s.Content, c)
			}
		}
		return s
	case reflect.String:
		return scalar("!!str", v.String())
	case reflect.Bool:
		return scalar("!!bool", strconv.FormatBool(v.Bool()))
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return scalar("!!int", strconv.FormatInt(v.Int(), 10))
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return scalar("!!int", strconv.FormatUint(v.Uint(), 10))
	}
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return scalar("!!str", s.String())
	}
	panic(fmt.Sprintf("topo: a model wrote a %s, which has no YAML form", v.Type()))
}

func scalar(tag, value string) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: value}
}

// stamp gives every node of the tree the declaration's position, except
// what was passed through from the file (Raw), which keeps its own.
func stamp(n *yaml.Node, at Pos) {
	if n.Line != 0 {
		return
	}
	n.Line, n.Column = at.Line, at.Col
	for _, c := range n.Content {
		stamp(c, at)
	}
}

// compact writes small mappings and lists of scalars on one line, as the
// shipped topologies do, so that the expansion reads like one of them.
func compact(n *yaml.Node) {
	for _, c := range n.Content {
		compact(c)
	}
	if n.Kind != yaml.MappingNode && n.Kind != yaml.SequenceNode {
		return
	}
	if width(n) <= 80 && depth(n) <= 2 {
		n.Style = yaml.FlowStyle
	}
}

func width(n *yaml.Node) int {
	w := len(n.Value) + 2
	for _, c := range n.Content {
		w += width(c)
		if c.HeadComment != "" || c.LineComment != "" {
			return 1 << 20
		}
	}
	return w
}

func depth(n *yaml.Node) int {
	d := 0
	for _, c := range n.Content {
		if cd := depth(c); cd > d {
			d = cd
		}
	}
	if n.Kind == yaml.ScalarNode {
		return 0
	}
	return d + 1
}

// Raw is a value a model passes on as written (another feature's block, a
// password given as ${VAR}), with its position: it is decoded where it lands.
type Raw struct {
	Pos  Pos
	node *yaml.Node
}

func (r *Raw) decodeYAML(_ *decoder, n *yaml.Node, _ string) {
	r.Pos, r.node = posOf(n), n
}

// IsZero reports that nothing was written.
func (r Raw) IsZero() bool { return r.node == nil }

// MarshalYAML implements yaml.Marshaler: the value as written.
func (r Raw) MarshalYAML() (any, error) { return r.node, nil }

// Lookup returns a scalar under key when the value is a mapping.
func (r Raw) Lookup(key string) (string, bool) {
	if r.node == nil || r.node.Kind != yaml.MappingNode {
		return "", false
	}
	if v := findKey(r.node, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value, true
	}
	return "", false
}

// expandModels runs the model hooks on the file's tree.
func expandModels(top *yaml.Node, d *decoder, exts []Extension) {
	for _, e := range exts {
		h, ok := e.(ExpandHook)
		if !ok {
			continue
		}
		key := h.ExpandKey()
		idx := -1
		for i := 0; i+1 < len(top.Content); i += 2 {
			if top.Content[i].Value == key {
				idx = i
			}
		}
		if idx < 0 {
			continue
		}
		k, val := top.Content[idx], top.Content[idx+1]
		top.Content = append(top.Content[:idx], top.Content[idx+2:]...)
		x := &Expansion{At: posOf(k), d: d, val: val, top: top, declared: map[string]Pos{}, added: map[string]Pos{}}
		x.nodes, x.links = bodyOf(top)
		if x.nodes == nil {
			continue // topology: or its nodes are not mappings: decode says so
		}
		for i := 0; i+1 < len(x.nodes.Content); i += 2 {
			x.declared[x.nodes.Content[i].Value] = posOf(x.nodes.Content[i])
		}
		d.expandKey = key
		before := len(d.ps.errs)
		h.Expand(x)
		d.ps.modelFailed = d.ps.modelFailed || len(d.ps.errs) > before
		d.expandKey = ""
	}
}

// bodyOf finds (making them if the file has none) topology.nodes and
// topology.links.
func bodyOf(top *yaml.Node) (nodes, links *yaml.Node) {
	body := child(top, "topology", yaml.MappingNode)
	if body == nil {
		return nil, nil
	}
	nodes = child(body, "nodes", yaml.MappingNode)
	links = child(body, "links", yaml.SequenceNode)
	if links == nil {
		return nil, nil
	}
	return nodes, links
}

// child returns m's value under key, adding an empty one of kind when the
// key is missing or null; nil when it holds something else.
func child(m *yaml.Node, key string, kind yaml.Kind) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value != key {
			continue
		}
		v := m.Content[i+1]
		if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
			*v = yaml.Node{Kind: kind, Line: v.Line, Column: v.Column}
		}
		if v.Kind != kind {
			return nil
		}
		return v
	}
	v := &yaml.Node{Kind: kind}
	m.Content = append(m.Content, &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key}, v)
	return v
}

// Expand reads a topology file and returns it with its models expanded: the
// plain topology erlab builds, valid on its own. The file is validated
// whole first; on any problem the ErrorList is returned.
func Expand(data []byte, file string, opts Options) ([]byte, error) {
	if _, err := Parse(data, file, opts); err != nil {
		return nil, err
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, err
	}
	ps := &problems{file: file, lookup: opts.LookupEnv}
	if ps.lookup == nil {
		ps.lookup = defaultLookup
	}
	d := &decoder{ps: ps, lookup: ps.lookup, keys: keysOf(opts.Extensions)}
	expandModels(root.Content[0], d, opts.Extensions)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&root); err != nil {
		return nil, err
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
