package lab

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"sort"

	"github.com/vishvananda/netlink"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// LabInfo is a deployed lab as the kernel shows it now.
type LabInfo struct {
	Name   string     `json:"name"`
	File   string     `json:"file,omitempty"`
	Status string     `json:"status"` // deployed, deploying, incomplete (state lost)
	Nodes  []NodeInfo `json:"nodes"`
	Links  []LinkInfo `json:"links"`
	// Features holds each feature's part (its InspectHook's data), by
	// feature name; Sections the same as tables, in feature order.
	Features map[string]any     `json:"features,omitempty"`
	Sections []*feature.Section `json:"-"`
}

// NodeInfo is one node of a deployed lab.
//
// Where a field means what containerlab's inspect -f json field of that
// name means, it has that name (lab_name, kind, container_id, image, state,
// ipv4_address, ipv6_address), for the scripts written against it.
type NodeInfo struct {
	LabName string `json:"lab_name"`
	Name    string `json:"name"`
	Kind    string `json:"kind"`
	NetNS   string `json:"netns"`
	Present bool   `json:"present"` // its namespace exists
	// State is running, stopped (by erlab stop: its links are parked),
	// absent (no namespace, and not stopped: a half-built lab) or
	// detached (its runtime restarted it, or it ended, away from the
	// namespace that holds its links: erlab start repairs it).
	State string `json:"state"`
	// What the kind's runtime says (a container's), when it has one.
	ContainerID  string      `json:"container_id,omitempty"`
	Image        string      `json:"image,omitempty"`
	RuntimeState string      `json:"runtime_state,omitempty"` // the runtime's own word: running, exited, ...
	IPv4Address  string      `json:"ipv4_address,omitempty"`  // management addresses, with their lengths
	IPv6Address  string      `json:"ipv6_address,omitempty"`
	Interfaces   []IfaceInfo `json:"interfaces"`
}

// IfaceInfo is one interface of a node, read from the kernel.
type IfaceInfo struct {
	Name      string   `json:"name"`
	Type      string   `json:"type"`
	State     string   `json:"state"` // up, down, no-carrier
	AdminUp   bool     `json:"admin_up"`
	Carrier   bool     `json:"carrier"`
	MTU       int      `json:"mtu"`
	MAC       string   `json:"mac,omitempty"`
	Addresses []string `json:"addresses,omitempty"`
	Master    string   `json:"master,omitempty"`
	Parent    string   `json:"parent,omitempty"`
	// Detail is what a feature says the interface is ("802.1Q 100 on
	// eth1").
	Detail string `json:"detail,omitempty"`
}

// LinkInfo is one link with the state of both ends.
type LinkInfo struct {
	A      string `json:"a"`
	B      string `json:"b"`
	AState string `json:"a_state"`
	BState string `json:"b_state"`
}

// NotDeployedError says that a lab has nothing on this host.
type NotDeployedError struct{ Name string }

func (e *NotDeployedError) Error() string {
	return fmt.Sprintf("lab %q is not deployed", e.Name)
}

// Inspect reads a deployed lab by name (see Lab.Inspect).
func Inspect(ctx context.Context, name string, opts Options) (*LabInfo, error) {
	l, err := OpenName(name, opts)
	if err != nil {
		return nil, err
	}
	return l.Inspect(ctx)
}

// Inspect reads the lab's nodes, interfaces and links from the kernel, and
// each feature's part. A lab whose state file is gone is still shown,
// from its namespaces, with status "incomplete".
func (l *Lab) Inspect(ctx context.Context) (*LabInfo, error) {
	name, opts := l.name, &l.opts
	l.mu.Lock()
	l.links = nil // read them afresh
	l.mu.Unlock()
	nss, err := kernel.NetNSList(labNetNSPrefix(name))
	if err != nil {
		return nil, err
	}
	st, err := l.state()
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	if st == nil && len(nss) == 0 {
		return nil, &NotDeployedError{Name: name}
	}
	info := &LabInfo{Name: name, Status: "incomplete"}
	if st != nil {
		info.File, info.Status = st.File, st.Status
	} else {
		st = &State{Name: name}
		for _, ns := range nss {
			if _, node, _ := splitNetNSName(ns); node != parkNode {
				st.Nodes = append(st.Nodes, NodeState{Name: node, Kind: "?", NetNS: ns})
			}
		}
	}
	details := hooks[feature.DetailHook](opts)
	// The nodes are read on the deploy's workers: each is a namespace
	// entered and two dumps.
	info.Nodes = make([]NodeInfo, len(st.Nodes))
	var g errgroup.Group
	g.SetLimit(opts.workers())
	for k, ns := range st.Nodes {
		g.Go(func() error {
			ni := NodeInfo{LabName: name, Name: ns.Name, Kind: ns.Kind, NetNS: ns.NetNS, State: "absent"}
			if ns.Stopped {
				ni.State = "stopped"
			}
			if kernel.NetNSExists(ns.NetNS) {
				ni.Present, ni.State = true, "running"
				ifaces, links, err := readInterfaces(ns.NetNS, details)
				if err != nil {
					return fmt.Errorf("node %s: %w", ns.Name, err)
				}
				ni.Interfaces = ifaces
				l.keepLinks(ns.Name, links)
			}
			rt, err := l.runtimeOf(ctx, ns)
			if err != nil {
				return fmt.Errorf("node %s: %w", ns.Name, err)
			}
			if rt != nil {
				ni.ContainerID, ni.Image, ni.RuntimeState, ni.IPv4Address, ni.IPv6Address = rt.ID, rt.Image, rt.State, rt.IPv4, rt.IPv6
				if rt.Detached && ni.State == "running" {
					ni.State = "detached"
				}
			}
			info.Nodes[k] = ni
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	states := map[string]string{}
	for _, ni := range info.Nodes {
		for _, i := range ni.Interfaces {
			states[ni.Name+":"+i.Name] = i.State
		}
	}
	for _, n := range st.Nodes {
		if n.Stopped {
			for _, iface := range st.endsOf(n.Name) {
				states[n.Name+":"+iface] = "parked"
			}
		}
	}
	for _, lk := range st.Links {
		info.Links = append(info.Links, LinkInfo{A: lk.A, B: lk.B, AState: orGone(states[lk.A]), BState: orGone(states[lk.B])})
	}
	for _, f := range opts.features() {
		h, ok := f.(feature.InspectHook)
		if !ok {
			continue
		}
		sec, err := h.Inspect(ctx, l)
		if err != nil {
			return nil, fmt.Errorf("inspect %s: %w", f.Name(), err)
		}
		if sec == nil {
			continue
		}
		if info.Features == nil {
			info.Features = map[string]any{}
		}
		info.Features[f.Name()] = sec.Data
		info.Sections = append(info.Sections, sec)
	}
	return info, nil
}

// runtimeOf asks the node's kind what its runtime says of it: nil for a
// kind with no runtime of its own.
func (l *Lab) runtimeOf(ctx context.Context, ns NodeState) (*nodes.Runtime, error) {
	kind, _ := l.opts.kinds().Get(ns.Kind)
	in, ok := kind.(nodes.Inspector)
	if !ok {
		return nil, nil
	}
	return in.Inspect(ctx, &nodes.Node{Lab: l.name, NetNS: ns.NetNS, Log: l.Log().With("node", ns.Name), Ops: l.opts.ops()})
}

func orGone(s string) string {
	if s == "" {
		return "absent"
	}
	return s
}

// InspectAll inspects every lab with anything on this host.
func InspectAll(ctx context.Context, opts Options) ([]*LabInfo, error) {
	names, err := Deployed(opts)
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []*LabInfo
	for _, n := range names {
		info, err := Inspect(ctx, n, opts)
		var nd *NotDeployedError
		if errors.As(err, &nd) {
			continue // destroyed while we looked
		}
		if err != nil {
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// readInterfaces lists a namespace's interfaces: ip -d addr show, with
// what features say of theirs. The loopback is listed only when it holds
// more than its usual addresses.
func readInterfaces(ns string, details []feature.DetailHook) ([]IfaceInfo, []netlink.Link, error) {
	h, err := kernel.RouteHandle(ns)
	if err != nil {
		return nil, nil, err
	}
	defer h.Close()
	links, err := kernel.Dump(func() ([]netlink.Link, error) { return h.LinkList() })
	if err != nil {
		return nil, nil, err
	}
	byIndex := map[int]string{}
	for _, l := range links {
		byIndex[l.Attrs().Index] = l.Attrs().Name
	}
	// One dump of every address (AddrList of a link dumps them all too,
	// and keeps the link's).
	all, err := kernel.Dump(func() ([]netlink.Addr, error) { return h.AddrList(nil, netlink.FAMILY_ALL) })
	if err != nil {
		return nil, nil, err
	}
	addrsOf := map[int][]netlink.Addr{}
	for _, ad := range all {
		addrsOf[ad.LinkIndex] = append(addrsOf[ad.LinkIndex], ad)
	}
	var out []IfaceInfo
	for _, l := range links {
		a := l.Attrs()
		addrs := addrsOf[a.Index]
		ii := IfaceInfo{
			Name:    a.Name,
			Type:    l.Type(),
			State:   linkState(a),
			AdminUp: a.Flags&net.FlagUp != 0,
			Carrier: a.RawFlags&unix.IFF_LOWER_UP != 0,
			MTU:     a.MTU,
			Master:  byIndex[a.MasterIndex],
		}
		if len(a.HardwareAddr) == 6 {
			ii.MAC = a.HardwareAddr.String()
		}
		if l.Type() != "veth" && a.ParentIndex != 0 {
			ii.Parent = byIndex[a.ParentIndex] // a stacked device's (a veth's is its peer, elsewhere)
		}
		for _, d := range details {
			if s, ok := d.Detail(l, byIndex); ok {
				ii.Detail = s
				break
			}
		}
		for _, ad := range addrs {
			if ad.IP.IsLinkLocalUnicast() && ad.IP.To4() == nil {
				continue // the kernel's own fe80:: per interface
			}
			if a.Name == "lo" && ad.IP.IsLoopback() {
				continue
			}
			ii.Addresses = append(ii.Addresses, ad.IPNet.String())
		}
		if a.Name == "lo" && len(ii.Addresses) == 0 {
			continue
		}
		out = append(out, ii)
	}
	sort.SliceStable(out, func(i, j int) bool { return naturalLess(out[i].Name, out[j].Name) })
	return out, links, nil
}

// linkState is the interface state from its flags, which the kernel
// updates at once (the RFC 2863 operstate lags by up to a second): "down"
// when set down, "no-carrier" when up but its peer (or parent) is down, as
// ip link shows NO-CARRIER, and "up".
func linkState(a *netlink.LinkAttrs) string {
	switch {
	case a.Flags&net.FlagUp == 0:
		return "down"
	case a.RawFlags&unix.IFF_LOWER_UP == 0:
		return "no-carrier"
	}
	return "up"
}

func naturalLess(a, b string) bool {
	if a == "lo" || b == "lo" {
		return a == "lo" && b != "lo"
	}
	return topo.NaturalCompare(a, b) < 0
}
