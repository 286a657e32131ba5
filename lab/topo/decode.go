package topo

import (
	"fmt"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decoder turns a yaml.Node tree into the typed model by reflection, the way
// yaml.v3 itself does, but it keeps going after an error so that every
// problem in the file is reported at once, each with its position, and it
// refuses keys the model does not know.
type decoder struct {
	ps     *problems
	lookup func(string) (string, bool) // environment for ${VAR} expansion
	depth  int
	// keys are the features' keys, by the scope of the struct they go in
	// (the scope tag of its Specs field).
	keys map[Scope]map[string]Key
	// expandKey is the model key being expanded, for messages.
	expandKey string
	// kept is what models keep of their declaration, by key, for the
	// topology's Ext.
	kept map[string]any
}

var scopeNames = map[string]Scope{"topology": ScopeTopology, "node": ScopeNode, "link": ScopeLink, "interface": ScopeInterface, "file": ScopeFile, "action": ScopeAction}

// yamlDecoder is implemented by model types that decode themselves with the
// decoder's help (ordered maps).
type yamlDecoder interface {
	decodeYAML(d *decoder, n *yaml.Node, what string)
}

var (
	posType         = reflect.TypeOf(Pos{})
	unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()
)

func posOf(n *yaml.Node) Pos { return Pos{Line: n.Line, Col: n.Column} }

// maxDepth bounds recursion. (Aliases cannot blow the work up
// exponentially: every level of the schema has a fixed shape, and a value of
// the wrong shape is not descended into.)
const maxDepth = 64

func (d *decoder) decode(n *yaml.Node, v reflect.Value, what string) {
	if d.depth > maxDepth {
		d.ps.errorf(posOf(n), "%snesting too deep", prefix(what))
		return
	}
	d.depth++
	defer func() { d.depth-- }()

	for n.Kind == yaml.AliasNode {
		if n.Alias == nil {
			d.ps.errorf(posOf(n), "%sunresolved alias", prefix(what))
			return
		}
		n = n.Alias
	}
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return
		}
		n = n.Content[0]
	}
	// A null value ("key:" or "key: ~") leaves the field unset.
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return
	}
	if v.CanAddr() {
		if u, ok := v.Addr().Interface().(yamlDecoder); ok {
			u.decodeYAML(d, n, what)
			return
		}
		if v.Addr().Type().Implements(unmarshalerType) {
			if n.Kind == yaml.ScalarNode && !d.expand(n, what) {
				return
			}
			if err := v.Addr().Interface().(yaml.Unmarshaler).UnmarshalYAML(n); err != nil {
				d.ps.errorf(posOf(n), "%s%v", prefix(what), err)
			}
			return
		}
	}
	switch v.Kind() {
	case reflect.Pointer:
		// Leave the field unset when its value is bad, so that one mistake
		// is reported once and not again as a zero value.
		before := len(d.ps.errs)
		elem := reflect.New(v.Type().Elem())
		d.decode(n, elem.Elem(), what)
		if len(d.ps.errs) == before {
			v.Set(elem)
		}
	case reflect.Struct:
		d.decodeStruct(n, v, what)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			d.ps.errorf(posOf(n), "%sexpected a list, got %s", prefix(what), describe(n))
			return
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, item := range n.Content {
			d.decode(item, s.Index(i), fmt.Sprintf("%s[%d]", what, i))
		}
		v.Set(s)
	default:
		d.decodeScalar(n, v, what)
	}
}

func (d *decoder) decodeStruct(n *yaml.Node, v reflect.Value, what string) {
	if n.Kind == yaml.ScalarNode {
		// A struct with a field tagged short:"true" may be written as
		// that field's value alone: "10.1.0.0/24" for {prefix: 10.1.0.0/24}.
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			if t.Field(i).Tag.Get("short") != "true" {
				continue
			}
			if pf, ok := t.FieldByName("Pos"); ok && pf.Type == posType {
				v.FieldByIndex(pf.Index).Set(reflect.ValueOf(posOf(n)))
			}
			d.decode(n, v.Field(i), what)
			return
		}
	}
	if n.Kind != yaml.MappingNode {
		d.ps.errorf(posOf(n), "%sexpected a mapping, got %s", prefix(what), describe(n))
		return
	}
	t := v.Type()
	fields := map[string]int{}
	var names []string
	specsField := -1
	var extKeys map[string]Key
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if f.Type == posType && f.Name == "Pos" {
			v.Field(i).Set(reflect.ValueOf(posOf(n)))
			continue
		}
		if f.Type == specsType {
			if sc, ok := scopeNames[f.Tag.Get("scope")]; ok {
				specsField, extKeys = i, d.keys[sc]
				for k := range extKeys {
					names = append(names, k)
				}
			}
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "" || name == "-" {
			continue
		}
		fields[name] = i
		names = append(names, name)
	}
	sort.Strings(names)
	seen := map[string]Pos{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		key := k.Value
		if first, dup := seen[key]; dup {
			d.ps.errorf(posOf(k), "%skey %q given twice (first at line %d)", prefix(what), key, first.Line)
			continue
		}
		seen[key] = posOf(k)
		idx, ok := fields[key]
		if ek, isExt := extKeys[key]; !ok && isExt {
			// A feature's key: decoded by the same rules into its type.
			val := reflect.New(reflect.TypeOf(ek.Spec)).Elem()
			before := len(d.ps.errs)
			d.decode(n.Content[i+1], val, join(what, key))
			if len(d.ps.errs) == before {
				specs := v.Field(specsField)
				if specs.IsNil() {
					specs.Set(reflect.MakeMap(specsType))
				}
				specs.SetMapIndex(reflect.ValueOf(key), reflect.ValueOf(Spec{Value: val.Interface(), Pos: posOf(n.Content[i+1]), Key: posOf(k)}))
			}
			continue
		}
		if !ok {
			msg := fmt.Sprintf("%sunknown key %q", prefix(what), key)
			if c := closest(key, names); c != "" {
				msg += fmt.Sprintf(" (did you mean %q?)", c)
			} else {
				msg += fmt.Sprintf(" (known keys: %s)", strings.Join(names, ", "))
			}
			d.ps.errorf(posOf(k), "%s", msg)
			continue
		}
		sub := join(what, key)
		if t.Field(idx).Tag.Get("what") == "-" {
			// A grouping key (topology:) adds nothing to messages.
			sub = what
		}
		d.decode(val, v.Field(idx), sub)
		if pf, ok := t.FieldByName(fieldPosName(t.Field(idx).Name)); ok && pf.Type == posType {
			v.FieldByIndex(pf.Index).Set(reflect.ValueOf(posOf(val)))
		}
	}
}

// fieldPosName is the name of the optional companion field that records where
// a field's value stood: MTU → MTUPos.
func fieldPosName(field string) string { return field + "Pos" }

func (d *decoder) decodeScalar(n *yaml.Node, v reflect.Value, what string) {
	if n.Kind != yaml.ScalarNode {
		d.ps.errorf(posOf(n), "%sexpected %s, got %s", prefix(what), kindName(v.Kind()), describe(n))
		return
	}
	expanded := d.expand(n, what)
	if v.Kind() == reflect.String {
		// Any scalar is acceptable as a string (sysctl values, exec lines);
		// yaml would otherwise refuse "1" typed as an integer for a string.
		v.SetString(n.Value)
		return
	}
	if !expanded {
		return
	}
	tmp := reflect.New(v.Type())
	if err := n.Decode(tmp.Interface()); err != nil {
		d.ps.errorf(posOf(n), "%sexpected %s, got %q", prefix(what), kindName(v.Kind()), n.Value)
		return
	}
	v.Set(tmp.Elem())
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:=([^}]*))?\}`)

// expand replaces ${VAR} and ${VAR:=default} in a scalar, in place, as
// containerlab does, so that secrets and per-user values need not be written
// into the file. An unset variable without a default is an error.
func (d *decoder) expand(n *yaml.Node, what string) bool {
	if !strings.Contains(n.Value, "${") {
		return true
	}
	ok := true
	n.Value = envRef.ReplaceAllStringFunc(n.Value, func(ref string) string {
		m := envRef.FindStringSubmatch(ref)
		if val, set := d.lookup(m[1]); set {
			return val
		}
		if m[2] != "" {
			return m[3]
		}
		d.ps.errorf(posOf(n), "%senvironment variable %s is not set (give a default with ${%s:=value})", prefix(what), m[1], m[1])
		ok = false
		return ref
	})
	// The expanded value is read afresh, whatever yaml made of the
	// reference: "${MTU}" is quoted, yet must decode as an integer.
	n.Tag, n.Style = "", 0
	return ok
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "something else"
}

func kindName(k reflect.Kind) string {
	switch k {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.String:
		return "a string"
	}
	return "a scalar"
}

// Map is a YAML mapping whose order and key positions are kept: node and
// interface order in the file is the order a user expects in output.
type Map[T any] []Entry[T]

// Entry is one key of a Map.
type Entry[T any] struct {
	Key    string
	KeyPos Pos
	Value  T
}

// Get returns the value under key.
func (m Map[T]) Get(key string) (T, bool) {
	for _, e := range m {
		if e.Key == key {
			return e.Value, true
		}
	}
	var zero T
	return zero, false
}

// Keys returns the keys in file order.
func (m Map[T]) Keys() []string {
	keys := make([]string, len(m))
	for i, e := range m {
		keys[i] = e.Key
	}
	return keys
}

func (m *Map[T]) decodeYAML(d *decoder, n *yaml.Node, what string) {
	if n.Kind != yaml.MappingNode {
		d.ps.errorf(posOf(n), "%sexpected a mapping, got %s", prefix(what), describe(n))
		return
	}
	parent, field := splitWhat(what)
	seen := map[string]Pos{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.ps.errorf(posOf(k), "%sa key must be a plain name, got %s", prefix(what), describe(k))
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.ps.errorf(posOf(k), "%sduplicate %s %q (first defined at line %d)", prefix(what), singular(field), k.Value, first.Line)
			continue
		}
		seen[k.Value] = posOf(k)
		e := Entry[T]{Key: k.Value, KeyPos: posOf(k)}
		d.decode(val, reflect.ValueOf(&e.Value).Elem(), join(parent, fmt.Sprintf("%s %q", singular(field), k.Value)))
		*m = append(*m, e)
	}
}

// singular names one entry of a collection in messages: "nodes" → "node".
func singular(field string) string {
	switch field {
	case "sysctls", "env", "labels":
		return strings.TrimSuffix(field, "s") + " key"
	}
	return strings.TrimSuffix(field, "s")
}

// prefix is a message context followed by ": ", or nothing at the top.
func prefix(what string) string {
	if what == "" {
		return ""
	}
	return what + ": "
}

// join extends a message context: `node "ce1"` + "mtu" → `node "ce1": mtu`.
func join(ctx, part string) string {
	if ctx == "" {
		return part
	}
	return ctx + ": " + part
}

// splitWhat undoes the last join: `node "ce1": interfaces` → (`node "ce1"`, "interfaces").
func splitWhat(what string) (parent, field string) {
	if i := strings.LastIndex(what, ": "); i >= 0 {
		return what[:i], what[i+2:]
	}
	return "", what
}

func defaultLookup(name string) (string, bool) { return os.LookupEnv(name) }
