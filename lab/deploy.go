package lab

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/ike"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// AlreadyDeployedError refuses a second deploy of a lab name.
type AlreadyDeployedError struct {
	Name string
	File string
}

func (e *AlreadyDeployedError) Error() string {
	from := ""
	if e.File != "" {
		from = " from " + e.File
	}
	return fmt.Sprintf("lab %q is already deployed%s; destroy it first (erlab destroy --name %s) or rename this lab", e.Name, from, e.Name)
}

// deployment is one deploy in progress: the topology, and a runtime node per
// topology node.
type deployment struct {
	t     *topo.Topology
	opts  *Options
	dir   string
	mu    sync.Mutex
	nodes map[string]*nodes.Node
	fds   map[string]netns.NsHandle
}

// Deploy builds the lab described by t on this host. It checks the kernel
// first and touches nothing when a feature is missing; a deploy that fails
// half-way removes what it made (unless opts.Retain).
func Deploy(ctx context.Context, t *topo.Topology, opts Options) (err error) {
	log := opts.log().With("lab", t.Name)
	if names, _ := kernel.NetNSList(labNetNSPrefix(t.Name)); len(names) > 0 {
		file := ""
		if s, err := opts.readState(t.Name); err == nil {
			file = s.File
		}
		return &AlreadyDeployedError{Name: t.Name, File: file}
	}
	if _, err := os.Stat(opts.labDir(t.Name)); err == nil {
		return &AlreadyDeployedError{Name: t.Name}
	}
	st := opts.status()
	st.Start("Checking kernel features")
	if err := CheckKernel(t); err != nil {
		st.End(false)
		return err
	}
	st.End(true)

	d := &deployment{t: t, opts: &opts, dir: opts.labDir(t.Name), nodes: map[string]*nodes.Node{}, fds: map[string]netns.NsHandle{}}
	// The state goes down first, so that destroy finds the lab by its
	// directory even if this process dies before making any namespace.
	if err := opts.writeState(stateFromTopology(t, "deploying")); err != nil {
		return err
	}
	defer d.close()
	defer func() {
		if err == nil || opts.Retain {
			return
		}
		log.Info("deploy failed; removing what it made", "err", err)
		st.Start("Removing the half-built lab")
		derr := Destroy(context.WithoutCancel(ctx), t.Name, opts)
		st.End(derr == nil)
		if derr != nil {
			err = errors.Join(err, fmt.Errorf("remove half-built lab: %w", derr))
		}
	}()

	started := time.Now()
	for _, p := range d.phases() {
		if len(p.steps) == 0 {
			continue
		}
		st.Start(p.title)
		perr := runPhase(ctx, p, opts.workers())
		st.End(perr == nil)
		if perr != nil {
			return perr
		}
		log.Debug("phase done", "phase", p.title, "elapsed", time.Since(started))
	}
	if err := opts.writeState(stateFromTopology(t, "deployed")); err != nil {
		return err
	}
	log.Info("lab deployed", "nodes", len(t.Nodes), "links", len(t.Links), "elapsed", time.Since(started))
	return nil
}

func (d *deployment) close() {
	for _, n := range d.nodes {
		n.NL.Close()
	}
	for _, fd := range d.fds {
		fd.Close()
	}
}

func (d *deployment) node(name string) *nodes.Node {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.nodes[name]
}

// phases lists the deploy, in order. Each phase's steps are independent.
func (d *deployment) phases() []phase {
	var (
		ns, create, links, wire, config, settle, mkaStart, mkaWait, ikeStart, ikeWait, execs, start phase
	)
	ikeStart.title, ikeWait.title = "Starting IKE (strongSwan)", "Waiting for IKE to establish tunnels"
	mkaStart.title, mkaWait.title = "Starting MKA (wpa_supplicant)", "Waiting for MKA to secure links"
	ns.title = fmt.Sprintf("Creating namespaces (%d)", len(d.t.Nodes))
	links.title = fmt.Sprintf("Creating links (%d)", len(d.t.Links))
	config.title = "Configuring interfaces, addresses and routes"
	create.title, wire.title, execs.title, start.title = "Creating node devices", "Wiring bridges", "Running exec commands", "Starting node processes"
	settle.title = "Waiting for links to come up"
	for _, n := range d.t.Nodes {
		kind, _ := d.opts.kinds().Get(n.Kind)
		ns.steps = append(ns.steps, step{"namespace " + n.Name, func(context.Context) error { return d.makeNamespace(n) }})
		if c, ok := kind.(nodes.Creator); ok {
			create.steps = append(create.steps, step{"create " + n.Name, func(ctx context.Context) error { return c.Create(ctx, d.node(n.Name)) }})
		}
		if w, ok := kind.(nodes.Wirer); ok {
			wire.steps = append(wire.steps, step{"wire " + n.Name, func(ctx context.Context) error { return w.Wire(ctx, d.node(n.Name)) }})
		}
		config.steps = append(config.steps, step{"configure " + n.Name, func(context.Context) error { return d.configure(n) }})
		settle.steps = append(settle.steps, step{"settle " + n.Name, func(ctx context.Context) error { return d.waitUp(ctx, n) }})
		for _, i := range n.Interfaces {
			if i.Type == topo.TypeMACsec && i.Link.MACsec.MKA != nil {
				mkaStart.steps = append(mkaStart.steps, step{"mka " + n.Name + ":" + i.Parent, func(context.Context) error {
					if err := startMKA(d.node(n.Name), n, i); err != nil {
						return fmt.Errorf("node %s: MKA on %s: %w", n.Name, i.Parent, err)
					}
					return nil
				}})
				mkaWait.steps = append(mkaWait.steps, step{"mka " + n.Name + ":" + i.Parent, func(ctx context.Context) error {
					if err := waitMKA(ctx, d.node(n.Name), i); err != nil {
						return fmt.Errorf("node %s: %w", n.Name, err)
					}
					return nil
				}})
			}
		}
		if in := ikeNode(d.t, n.Name, NetNSName(d.t.Name, n.Name), ""); len(in.Conns) > 0 {
			ikeStart.steps = append(ikeStart.steps, step{"ike " + n.Name, func(ctx context.Context) error {
				rn := d.node(n.Name)
				if err := ike.Start(ctx, ikeNode(d.t, n.Name, rn.NetNS, rn.Dir)); err != nil {
					return fmt.Errorf("node %s: %w", n.Name, err)
				}
				return nil
			}})
		}
		if len(n.Exec) > 0 {
			execs.steps = append(execs.steps, step{"exec " + n.Name, func(ctx context.Context) error { return d.runExec(ctx, n) }})
		}
		if s, ok := kind.(nodes.Starter); ok {
			start.steps = append(start.steps, step{"start " + n.Name, func(ctx context.Context) error { return s.Start(ctx, d.node(n.Name)) }})
		}
	}
	for _, tu := range d.t.Tunnels {
		if tu.IKE == nil {
			continue
		}
		ikeWait.steps = append(ikeWait.steps, step{"ike " + tu.Name, func(ctx context.Context) error {
			rn := d.node(tu.A.Node) // the initiator
			return ike.WaitEstablished(ctx, ikeNode(d.t, tu.A.Node, rn.NetNS, rn.Dir), tu.Name, IKEEstablishTimeout)
		}})
	}
	for i, l := range d.t.Links {
		links.steps = append(links.steps, step{"link " + l.A.String(), func(context.Context) error { return d.makeLink(l, i) }})
	}
	return []phase{ns, create, links, wire, config, settle, mkaStart, mkaWait, ikeStart, ikeWait, execs, start}
}

// baseSysctls are the settings every node gets, each written explicitly:
// a new namespace takes its IPv4 settings from the host's (and, with
// net.core.devconf_inherit_init_net, its IPv6 ones too), so a host where
// dockerd set ip_forward=1 would otherwise hand forwarding to every node,
// and one with rp_filter on would drop the asymmetric paths of a failover.
//
// No duplicate address detection on a lab's links: addresses are unique
// by validation, and DAD holds even the kernel's own link-local addresses
// tentative for a second or two, so IPv6 would not work yet when deploy
// returns. IPv6 addresses stay on an interface set down, as IPv4 ones do,
// so that a pulled link comes back with its addresses. A node's own
// sysctls, written later, may change any of these.
func baseSysctls(n *topo.Node) [][2]string {
	fwd := "0"
	if n.Forward {
		fwd = "1"
	}
	return [][2]string{
		{"net.ipv4.ip_forward", fwd}, {"net.ipv6.conf.all.forwarding", fwd}, {"net.ipv6.conf.default.forwarding", fwd},
		{"net.ipv4.conf.all.rp_filter", "0"}, {"net.ipv4.conf.default.rp_filter", "0"},
		{"net.ipv6.conf.all.disable_ipv6", "0"}, {"net.ipv6.conf.default.disable_ipv6", "0"},
		{"net.ipv6.conf.all.accept_dad", "0"}, {"net.ipv6.conf.default.accept_dad", "0"},
		{"net.ipv6.conf.all.keep_addr_on_down", "1"}, {"net.ipv6.conf.default.keep_addr_on_down", "1"},
	}
}

func (d *deployment) makeNamespace(n *topo.Node) error {
	name := NetNSName(d.t.Name, n.Name)
	if err := kernel.NetNSAdd(name); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	if err := kernel.SysctlSet(name, baseSysctls(n)); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	fd, err := kernel.Open(name)
	if err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	h, err := netlink.NewHandleAt(fd, unix.NETLINK_ROUTE)
	if err != nil {
		fd.Close()
		return fmt.Errorf("node %s: netlink in %s: %w", n.Name, name, err)
	}
	dir := filepath.Join(d.dir, "nodes", n.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		h.Close()
		fd.Close()
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	d.mu.Lock()
	d.fds[n.Name] = fd
	d.nodes[n.Name] = &nodes.Node{Lab: d.t.Name, Spec: n, NetNS: name, Dir: dir, NL: h, Log: d.opts.log().With("lab", d.t.Name, "node", n.Name)}
	d.mu.Unlock()
	return nil
}

// makeLink creates the veth pair straight into both namespaces, so no
// temporary name ever exists in the host's namespace (two labs, or two links
// at once, cannot collide there): ip link add A netns NS_A type veth peer B netns NS_B.
//
// The A end gets an interface index of its own (firstLinkIndex + i), far
// from the small ones the kernel hands out, so that it never equals its
// peer's index in the other namespace. The kernel treats a carrier change on
// a device whose index differs from its peer link's as urgent; with equal
// indexes it batches the event for up to a second, and until it is handled
// bridge ports do not forward and IPv6 does not use the link.
func (d *deployment) makeLink(l *topo.Link, i int) error {
	a := d.node(l.A.Node)
	d.mu.Lock()
	peerFD := d.fds[l.B.Node]
	d.mu.Unlock()
	veth := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: l.A.Iface, Index: firstLinkIndex + i},
		PeerName:      l.B.Iface,
		PeerNamespace: netlink.NsFd(peerFD),
	}
	if err := retry(func() error { return a.NL.LinkAdd(veth) }); err != nil {
		return fmt.Errorf("create veth %s<->%s: %w", l.A, l.B, err)
	}
	return nil
}

// firstLinkIndex is the interface index of the first link's A end.
const firstLinkIndex = 100000

// retry repeats a netlink call that failed for a passing reason (a busy
// kernel answers EBUSY or EAGAIN) a few times before giving up.
func retry(fn func() error) error {
	var err error
	for i := range 5 {
		if err = fn(); err == nil || !(errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EAGAIN)) {
			return err
		}
		time.Sleep(time.Duration(i+1) * 10 * time.Millisecond)
	}
	return err
}

// configure brings a node's interfaces, addresses, sysctls and routes to what
// the topology says: VLANs are made parent first, and routes come last, as
// the kernel refuses a gateway on an interface that is down.
func (d *deployment) configure(n *topo.Node) error {
	rn := d.node(n.Name)
	h := rn.NL
	if lo, err := h.LinkByName("lo"); err == nil {
		if err := h.LinkSetUp(lo); err != nil {
			return fmt.Errorf("node %s: set lo up: %w", n.Name, err)
		}
	}
	for _, iface := range orderByParent(n) {
		if iface.Type == topo.TypeVeth && iface.Link.MACsec != nil {
			// MACsec covers everything on the port: the port itself must
			// send nothing in clear, and IPv6 would (router solicitations,
			// MLD). Off before the port comes up.
			if err := kernel.SysctlSet(rn.NetNS, [][2]string{{"net/ipv6/conf/" + iface.Name + "/disable_ipv6", "1"}}); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
		if mkaOwned(n, iface) {
			continue // its MKA keeper configures it, once wpa_supplicant has made it
		}
		if iface.Type == topo.TypeXfrm {
			continue // with its tunnel, below
		}
		if iface.Type == topo.TypeMACsec {
			if err := configureMACsec(rn, d.t, iface); err != nil {
				return fmt.Errorf("node %s: MACsec %s on %s: %w", n.Name, iface.Name, iface.Parent, err)
			}
		}
		if iface.Type == topo.TypeVLAN && belowMACsec(n, iface) {
			// The same for a subinterface MACsec sits on: made down,
			// IPv6 off, then up.
			quiet := *iface
			quiet.Down = true
			if err := configureInterface(h, &quiet); err != nil {
				return fmt.Errorf("node %s: interface %s: %w", n.Name, iface.Name, err)
			}
			if err := kernel.SysctlSet(rn.NetNS, [][2]string{{"net/ipv6/conf/" + iface.Name + "/disable_ipv6", "1"}}); err != nil {
				return fmt.Errorf("node %s: %w", n.Name, err)
			}
		}
		if err := configureInterface(h, iface); err != nil {
			return fmt.Errorf("node %s: interface %s: %w", n.Name, iface.Name, err)
		}
	}
	if err := configureTunnels(rn, d.t, n); err != nil {
		return fmt.Errorf("node %s: %w", n.Name, err)
	}
	var kv [][2]string
	for _, s := range n.Sysctls {
		kv = append(kv, [2]string{s.Key, s.Value})
	}
	if len(kv) > 0 {
		if err := kernel.SysctlSet(rn.NetNS, kv); err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
	}
	for _, r := range n.Routes {
		if mkaRoute(n, r) {
			continue // the MKA keeper's too
		}
		if err := addRoute(h, r); err != nil {
			return fmt.Errorf("node %s: route %s: %w", n.Name, r.Dst, err)
		}
	}
	return nil
}

// belowMACsec says whether a MACsec device sits on the interface, directly
// or through VLANs.
func belowMACsec(n *topo.Node, iface *topo.Interface) bool {
	for _, m := range n.Interfaces {
		if m.Type != topo.TypeMACsec {
			continue
		}
		for cur := n.Interface(m.Parent); cur != nil; cur = n.Interface(cur.Parent) {
			if cur == iface {
				return true
			}
			if cur.Parent == "" {
				break
			}
		}
	}
	return false
}

// orderByParent returns the interfaces with every VLAN after its parent.
func orderByParent(n *topo.Node) []*topo.Interface {
	var out []*topo.Interface
	done := map[string]bool{}
	for len(out) < len(n.Interfaces) {
		progress := false
		for _, i := range n.Interfaces {
			if done[i.Name] || ((i.Type == topo.TypeVLAN || i.Type == topo.TypeMACsec) && !done[i.Parent]) {
				continue
			}
			out, done[i.Name], progress = append(out, i), true, true
		}
		if !progress { // validation refuses cycles; never loop on one
			break
		}
	}
	return out
}

func configureInterface(h *netlink.Handle, iface *topo.Interface) error {
	if iface.Type == topo.TypeVLAN {
		parent, err := h.LinkByName(iface.Parent)
		if err != nil {
			return fmt.Errorf("find parent %s: %w", iface.Parent, err)
		}
		proto := netlink.VLAN_PROTOCOL_8021Q
		if iface.VLANProtocol == topo.Dot1ad {
			proto = netlink.VLAN_PROTOCOL_8021AD
		}
		// ip link add link PARENT name NAME type vlan protocol PROTO id ID
		v := &netlink.Vlan{LinkAttrs: netlink.LinkAttrs{Name: iface.Name, ParentIndex: parent.Attrs().Index}, VlanId: iface.VLAN, VlanProtocol: proto}
		if err := h.LinkAdd(v); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create VLAN %d (%s) on %s: %w", iface.VLAN, iface.VLANProtocol, iface.Parent, err)
		}
	}
	link, err := h.LinkByName(iface.Name)
	if err != nil {
		return err
	}
	if iface.MTU > 0 && link.Attrs().MTU != iface.MTU {
		if err := h.LinkSetMTU(link, iface.MTU); err != nil {
			return fmt.Errorf("set mtu %d: %w", iface.MTU, err)
		}
	}
	if iface.MAC != nil {
		if err := h.LinkSetHardwareAddr(link, iface.MAC); err != nil {
			return fmt.Errorf("set mac %s: %w", iface.MAC, err)
		}
	}
	for _, p := range iface.Addresses {
		a := &netlink.Addr{IPNet: prefixToIPNet(p)}
		if p.Addr().Is6() {
			a.Flags = unix.IFA_F_NODAD // see baseSysctls
		}
		if err := h.AddrReplace(link, a); err != nil {
			return fmt.Errorf("add address %s: %w", p, err)
		}
	}
	if iface.Down || iface.Type == topo.TypeLoopback {
		return nil
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("set up: %w", err)
	}
	return nil
}

func addRoute(h *netlink.Handle, r topo.Route) error {
	route := &netlink.Route{Dst: prefixToIPNet(r.Dst), Priority: r.Metric, Protocol: unix.RTPROT_STATIC}
	if r.Via.IsValid() {
		route.Gw = net.IP(r.Via.AsSlice())
	}
	if r.Dev != "" {
		link, err := h.LinkByName(r.Dev)
		if err != nil {
			return fmt.Errorf("find dev %s: %w", r.Dev, err)
		}
		route.LinkIndex = link.Attrs().Index
	}
	if r.Onlink {
		route.Flags |= int(netlink.FLAG_ONLINK)
	}
	if !r.Via.IsValid() {
		route.Scope = netlink.SCOPE_LINK
	}
	// ip route replace: a route the kernel already has (say, a device
	// route) is not an error.
	return h.RouteReplace(route)
}

func prefixToIPNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() {
		bits = 128
	}
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}

// LinkUpTimeout bounds how long deploy waits for links to come up.
const LinkUpTimeout = 10 * time.Second

// waitUp waits until every interface of the node that should carry traffic
// is operationally up. The kernel tells the bridge and IPv6 about carrier
// through linkwatch, a little after the link is set up; until then a bridge
// port does not forward and IPv6 does not use the link, so a lab is not
// ready when its last netlink call returns.
func (d *deployment) waitUp(ctx context.Context, n *topo.Node) error {
	want := map[string]bool{}
	for _, i := range n.Interfaces {
		if d.shouldBeUp(n, i) {
			want[i.Name] = true
		}
	}
	if len(want) == 0 {
		return nil
	}
	h := d.node(n.Name).NL
	deadline := time.Now().Add(LinkUpTimeout)
	for {
		links, err := h.LinkList()
		if err != nil {
			return fmt.Errorf("node %s: %w", n.Name, err)
		}
		var down []string
		for _, l := range links {
			if want[l.Attrs().Name] && l.Attrs().OperState != netlink.OperUp {
				down = append(down, l.Attrs().Name)
			}
		}
		if len(down) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node %s: %s did not come up within %s", n.Name, strings.Join(down, ", "), LinkUpTimeout)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// shouldBeUp says whether an interface will carry traffic once deployed: it
// is not set down, and neither is the far end of its link, nor its parent.
func (d *deployment) shouldBeUp(n *topo.Node, i *topo.Interface) bool {
	if i.Down || mkaOwned(n, i) { // MKA devices: see waitMKA
		return false
	}
	switch i.Type {
	case topo.TypeVeth:
		far := i.Link.B
		if far.Node == n.Name && far.Iface == i.Name {
			far = i.Link.A
		}
		return !d.t.Node(far.Node).Interface(far.Iface).Down
	case topo.TypeVLAN, topo.TypeMACsec:
		return d.shouldBeUp(n, n.Interface(i.Parent))
	}
	return false
}
