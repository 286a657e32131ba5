package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// Need is a kernel feature a topology needs, and where.
type Need = kernel.Need

// KernelFeatures lists every kernel feature erlab may use: the engine's
// (veth, and what kinds need), then each feature's, in order.
func KernelFeatures(opts Options) []*kernel.Feature {
	out := []*kernel.Feature{kernel.Veth}
	add := func(f *kernel.Feature) {
		if !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	for _, k := range opts.kinds().All() {
		if nd, ok := k.(nodes.Needer); ok {
			for _, f := range nd.Needs(&topo.Node{}) {
				add(f)
			}
		}
	}
	for _, h := range hooks[feature.KernelHook](&opts) {
		for _, f := range h.KernelFeatures() {
			add(f)
		}
	}
	return out
}

// Needs computes the kernel features a topology needs, each with the places
// that need it, in KernelFeatures order.
func Needs(t *topo.Topology, opts Options) []Need {
	where := map[*kernel.Feature][]string{}
	for _, l := range t.Links {
		where[kernel.Veth] = append(where[kernel.Veth], l.A.String())
	}
	for _, hl := range t.HostLinks {
		where[kernel.Veth] = append(where[kernel.Veth], hl.End.String())
	}
	for _, n := range t.Nodes {
		kind, _ := opts.kinds().Get(n.Kind)
		if nd, ok := kind.(nodes.Needer); ok {
			for _, f := range nd.Needs(n) {
				where[f] = append(where[f], n.Name)
			}
		}
	}
	for _, h := range hooks[feature.KernelHook](&opts) {
		for _, need := range h.Needs(t) {
			where[need.Feature] = append(where[need.Feature], need.Where...)
		}
	}
	return kernel.Needs(where, KernelFeatures(opts)...)
}

// MissingFeaturesError says which features the running kernel lacks for a
// topology, and the way out.
type MissingFeaturesError struct {
	Kernel  string
	File    string
	Missing []Need
	Reasons map[*kernel.Feature]error
}

func (e *MissingFeaturesError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "this kernel (%s) lacks what the lab needs:\n", e.Kernel)
	for _, n := range e.Missing {
		where := n.Where
		more := ""
		if len(where) > 4 {
			more = fmt.Sprintf(" and %d more", len(where)-4)
			where = where[:4]
		}
		fmt.Fprintf(&b, "  %s (%s, %v), needed by %s%s\n", n.Feature.Name, n.Feature.Option, e.Reasons[n.Feature], strings.Join(where, ", "), more)
	}
	fmt.Fprintf(&b, "run the lab in erlab's microVM, which boots Debian's kernel with these as modules:\n")
	if src := SourceTree(e.File); src != "" {
		fmt.Fprintf(&b, "  %s -- %s %s\n", filepath.Join(src, "scripts/vm-run"), filepath.Join(src, "scripts/demo"), e.File)
	} else {
		fmt.Fprintf(&b, "  scripts/vm-run -- scripts/demo %s   (from erlab's source tree)\n", e.File)
	}
	fmt.Fprintf(&b, "or on a host (or the Vagrant box) whose kernel has them")
	return b.String()
}

// BuildSourceTree is the source tree erlab was built from, when the build
// said (scripts/setup does: go build -ldflags "-X ...lab.BuildSourceTree=$PWD").
var BuildSourceTree string

// SourceTree finds erlab's source tree, where scripts/vm-run is, so that a
// command erlab suggests works from wherever the user is: above the
// topology file, above the working directory, above the binary, or where
// it was built. "" when none is found.
func SourceTree(file string) string {
	var starts []string
	if file != "" {
		starts = append(starts, filepath.Dir(file))
	}
	if wd, err := os.Getwd(); err == nil {
		starts = append(starts, wd)
	}
	if exe, err := os.Executable(); err == nil {
		starts = append(starts, filepath.Dir(exe))
	}
	for _, dir := range starts {
		for dir, _ = filepath.Abs(dir); ; dir = filepath.Dir(dir) {
			if isSourceTree(dir) {
				return dir
			}
			if dir == filepath.Dir(dir) {
				break
			}
		}
	}
	if BuildSourceTree != "" && isSourceTree(BuildSourceTree) {
		return BuildSourceTree
	}
	return ""
}

func isSourceTree(dir string) bool {
	st, err := os.Stat(filepath.Join(dir, "scripts", "vm-run"))
	if err != nil || st.Mode()&0o111 == 0 {
		return false
	}
	_, err = os.Stat(filepath.Join(dir, "cmd", "erlab"))
	return err == nil
}

// CheckKernel probes the running kernel for what the topology needs: each
// node's sysctls (located in the file, like every other problem of it),
// then the features.
func CheckKernel(t *topo.Topology, opts Options) error {
	if err := checkSysctls(t); err != nil {
		return err
	}
	needs := Needs(t, opts)
	var features []*kernel.Feature
	for _, n := range needs {
		features = append(features, n.Feature)
	}
	reasons, err := kernel.Probe(features)
	if err != nil {
		return err
	}
	if len(reasons) == 0 {
		return nil
	}
	e := &MissingFeaturesError{Kernel: kernelRelease(), File: t.File, Reasons: reasons}
	for _, n := range needs {
		if _, missing := reasons[n.Feature]; missing {
			e.Missing = append(e.Missing, n)
		}
	}
	return e
}

func kernelRelease() string {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return "unknown"
	}
	return unix.ByteSliceToString(u.Release[:])
}

// checkSysctls checks every sysctl a node sets against this kernel. A key of
// one of the node's interfaces (net.ipv4.conf.eth1.rp_filter) is looked up
// as the same key of "default", as the interface does not exist yet; an
// interface the node does not have is an error of its own.
func checkSysctls(t *topo.Topology) error {
	type use struct {
		node   *topo.Node
		s      topo.Sysctl
		lookup string
	}
	var uses []use
	var errs topo.ErrorList
	var keys []string
	for _, n := range t.Nodes {
		for _, s := range n.Sysctls {
			lookup, msg := sysctlLookup(n, s.Key)
			if msg != "" {
				errs = append(errs, topo.Problem{File: t.File, Pos: s.Pos, Msg: fmt.Sprintf("node %q: sysctl %q: %s", n.Name, s.Key, msg)})
				continue
			}
			uses = append(uses, use{n, s, lookup})
			keys = append(keys, lookup)
		}
	}
	if len(keys) > 0 {
		exist, err := kernel.SysctlsExist(keys)
		if err != nil {
			return err
		}
		for _, u := range uses {
			if !exist[u.lookup] {
				errs = append(errs, topo.Problem{File: t.File, Pos: u.s.Pos,
					Msg: fmt.Sprintf("node %q: sysctl %q: this kernel (%s) has no such setting in a network namespace", u.node.Name, u.s.Key, kernelRelease())})
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i].Pos, errs[j].Pos
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	return errs
}

// sysctlLookup maps a node's sysctl key to the key a fresh namespace has:
// an interface of the node (net/ipv4/conf/IFACE/..., .../neigh/IFACE/...)
// becomes "default". It says what is wrong when the key names an interface
// the node does not have.
func sysctlLookup(n *topo.Node, key string) (string, string) {
	rel := strings.TrimPrefix(kernel.SysctlPath(key), "/proc/sys/")
	parts := strings.Split(rel, "/")
	if len(parts) < 5 || parts[0] != "net" || (parts[1] != "ipv4" && parts[1] != "ipv6") || (parts[2] != "conf" && parts[2] != "neigh") {
		return key, ""
	}
	if !strings.Contains(key, "/") {
		// eth1.100 in a dotted key reads as eth1, then 100.
		rest := strings.Join(parts[3:], ".")
		for _, i := range n.Interfaces {
			if strings.Contains(i.Name, ".") && strings.HasPrefix(rest, i.Name+".") {
				slash := strings.Join([]string{"net", parts[1], parts[2], i.Name, strings.ReplaceAll(strings.TrimPrefix(rest, i.Name+"."), ".", "/")}, "/")
				return key, fmt.Sprintf("the interface name holds a dot, so write the key with slashes: %s", slash)
			}
		}
	}
	switch iface := parts[3]; {
	case iface == "all" || iface == "default" || iface == "lo":
		return key, ""
	case n.Interface(iface) != nil:
		parts[3] = "default"
		return strings.Join(parts, "/"), ""
	default:
		return key, fmt.Sprintf("%s is not an interface of this node", iface)
	}
}

// Capability is one kernel feature as erlab capabilities shows it.
type Capability struct {
	Name, Option string
	Missing      error // why the kernel lacks it; nil when it has it
}

// Capabilities probes this kernel for every feature erlab uses, or, given
// a topology, for those it needs.
func Capabilities(t *topo.Topology, opts Options) ([]Capability, error) {
	features := KernelFeatures(opts)
	if t != nil {
		features = nil
		for _, n := range Needs(t, opts) {
			features = append(features, n.Feature)
		}
	}
	missing, err := kernel.Probe(features)
	if err != nil {
		return nil, err
	}
	var out []Capability
	for _, f := range features {
		out = append(out, Capability{Name: f.Name, Option: f.Option, Missing: missing[f]})
	}
	return out, nil
}
