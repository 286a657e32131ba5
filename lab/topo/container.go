package topo

import (
	"net/netip"
	"regexp"
	"strings"
	"time"

	"github.com/docker/go-units"
)

// containerlab's management network defaults, which a lab's mgmt: block
// overrides key by key.
var (
	DefaultMgmtIPv4 = netip.MustParsePrefix("172.20.20.0/24")
	DefaultMgmtIPv6 = netip.MustParsePrefix("3fff:172:20:20::/64")
)

// MgmtNetwork is the management network's name: the one mgmt: gives, or
// the lab's own, erlab-<lab> (not containerlab's shared "clab": destroy
// removes it with the lab).
func (m *Mgmt) MgmtNetwork(lab string) string {
	if m.Network != "" {
		return m.Network
	}
	return "erlab-" + lab
}

// resolveMgmt reads the mgmt: block. A lab has a management network when
// it has the block, or when a node asks for an address or a port there.
func resolveMgmt(spec *MgmtSpec, asked bool, ps *problems) *Mgmt {
	if spec == nil && !asked {
		return nil
	}
	if spec == nil {
		spec = &MgmtSpec{}
	}
	m := &Mgmt{Pos: spec.Pos, Bridge: deref(spec.Bridge), IPv4Subnet: DefaultMgmtIPv4, IPv6Subnet: DefaultMgmtIPv6}
	if spec.Network != nil {
		m.Network = *spec.Network
		if m.Network == "" || strings.ContainsAny(m.Network, " /:") {
			ps.errorf(spec.Pos, "mgmt: network: %q is not a Docker network name", m.Network)
		}
	}
	if m.Bridge != "" {
		if why := ValidIfName(m.Bridge); why != "" {
			ps.errorf(spec.Pos, "mgmt: bridge: %q: %s", m.Bridge, why)
		}
	}
	prefix := func(v *string, pos Pos, key string, v6 bool, dst *netip.Prefix) {
		if v == nil {
			return
		}
		if *v == "auto" && strings.HasSuffix(key, "-subnet") {
			*dst = netip.Prefix{}
			return
		}
		p, err := netip.ParsePrefix(*v)
		switch {
		case err != nil:
			ps.errorf(pos, "mgmt: %s: %q is not a prefix such as %s", key, *v, map[bool]string{false: "172.20.20.0/24", true: "3fff:172:20:20::/64"}[v6])
		case p.Addr().Is6() != v6:
			ps.errorf(pos, "mgmt: %s: %s is not an IPv%s prefix", key, p, map[bool]string{false: "4", true: "6"}[v6])
		case p.Masked() != p:
			ps.errorf(pos, "mgmt: %s: %s has host bits set (the network is %s)", key, p, p.Masked())
		default:
			*dst = p
		}
	}
	prefix(spec.IPv4Subnet, spec.IPv4SubnetPos, "ipv4-subnet", false, &m.IPv4Subnet)
	prefix(spec.IPv6Subnet, spec.IPv6SubnetPos, "ipv6-subnet", true, &m.IPv6Subnet)
	prefix(spec.IPv4Range, spec.IPv4RangePos, "ipv4-range", false, &m.IPv4Range)
	prefix(spec.IPv6Range, spec.IPv6RangePos, "ipv6-range", true, &m.IPv6Range)
	for _, r := range []struct {
		key           string
		sub, rng      netip.Prefix
		pos           Pos
		gw            *string
		gwPos         Pos
		dst           *netip.Addr
		v6            bool
		subnetWritten bool
	}{
		{"ipv4", m.IPv4Subnet, m.IPv4Range, spec.IPv4RangePos, spec.IPv4Gw, spec.IPv4GwPos, &m.IPv4Gw, false, spec.IPv4Subnet != nil},
		{"ipv6", m.IPv6Subnet, m.IPv6Range, spec.IPv6RangePos, spec.IPv6Gw, spec.IPv6GwPos, &m.IPv6Gw, true, spec.IPv6Subnet != nil},
	} {
		if r.rng.IsValid() && (!r.sub.IsValid() || !r.sub.Contains(r.rng.Addr()) || r.rng.Bits() < r.sub.Bits()) {
			ps.errorf(r.pos, "mgmt: %s-range: %s is not inside %s-subnet %s", r.key, r.rng, r.key, subnetName(r.sub))
		}
		if r.gw == nil {
			continue
		}
		a, err := netip.ParseAddr(*r.gw)
		switch {
		case err != nil || a.Is6() != r.v6 || a.Is4In6():
			ps.errorf(r.gwPos, "mgmt: %s-gw: %q is not an IPv%s address", r.key, *r.gw, r.key[3:])
		case !r.sub.IsValid():
			ps.errorf(r.gwPos, "mgmt: %s-gw: %s needs %s-subnet (it is auto)", r.key, a, r.key)
		case !r.sub.Contains(a):
			ps.errorf(r.gwPos, "mgmt: %s-gw: %s is not in %s-subnet %s", r.key, a, r.key, r.sub)
		default:
			*r.dst = a
		}
	}
	if spec.MTU != nil {
		if *spec.MTU < 1280 || *spec.MTU > 65535 {
			ps.errorf(spec.MTUPos, "mgmt: mtu: %d is out of range (1280 to 65535)", *spec.MTU)
		}
		m.MTU = *spec.MTU
	}
	if spec.ExternalAccess != nil && *spec.ExternalAccess {
		ps.warnf(spec.ExternalAccessPos, "mgmt: external-access: ignored: erlab adds no firewall or NAT rules; the management network reaches the host only")
	}
	return m
}

func subnetName(p netip.Prefix) string {
	if !p.IsValid() {
		return "auto"
	}
	return p.String()
}

// gateway is the management network's gateway in a family: the one given,
// or Docker's pick, the subnet's first address.
func (m *Mgmt) gateway(v6 bool) netip.Addr {
	gw, sub := m.IPv4Gw, m.IPv4Subnet
	if v6 {
		gw, sub = m.IPv6Gw, m.IPv6Subnet
	}
	if gw.IsValid() || !sub.IsValid() {
		return gw
	}
	return sub.Addr().Next()
}

// resolveContainer reads a node's container runtime keys. Whether the
// node's kind is a container's is its kind's check to say; this reads the
// values and says what is wrong with them, where.
func resolveContainer(n *Node, spec NodeSpec, ps *problems) {
	addr := func(v *string, pos Pos, key string, v6 bool) netip.Addr {
		if v == nil {
			return netip.Addr{}
		}
		a, err := netip.ParseAddr(*v)
		if err != nil || a.Is6() != v6 || a.Is4In6() {
			fam := "4"
			if v6 {
				fam = "6"
			}
			ps.errorf(pos, "node %q: %s: %q is not an IPv%s address (no prefix length: the management subnet gives it)", n.Name, key, *v, fam)
			return netip.Addr{}
		}
		return a
	}
	for _, d := range []struct {
		old     *string
		oldPos  Pos
		cur     **string
		curPos  *Pos
		oldName string
	}{{spec.MgmtIPv4Old, spec.MgmtIPv4OldPos, &spec.MgmtIPv4, &spec.MgmtIPv4Pos, "mgmt_ipv4"}, {spec.MgmtIPv6Old, spec.MgmtIPv6OldPos, &spec.MgmtIPv6, &spec.MgmtIPv6Pos, "mgmt_ipv6"}} {
		if d.old == nil {
			continue
		}
		newName := strings.ReplaceAll(d.oldName, "_", "-")
		if *d.cur != nil {
			ps.errorf(d.oldPos, "node %q: %s and %s are one key (the first is its deprecated spelling): give %s only", n.Name, d.oldName, newName, newName)
			continue
		}
		ps.warnf(d.oldPos, "node %q: %s is deprecated, as in containerlab: write %s", n.Name, d.oldName, newName)
		*d.cur, *d.curPos = d.old, d.oldPos
	}
	n.MgmtIPv4 = addr(spec.MgmtIPv4, spec.MgmtIPv4Pos, "mgmt-ipv4", false)
	n.MgmtIPv6 = addr(spec.MgmtIPv6, spec.MgmtIPv6Pos, "mgmt-ipv6", true)
	n.mgmtPos = [2]Pos{spec.MgmtIPv4Pos, spec.MgmtIPv6Pos}
	if spec.NetworkMode != nil {
		switch mode := *spec.NetworkMode; {
		case mode == "none" || mode == "":
			n.NetworkMode = mode
		case mode == "host" || strings.HasPrefix(mode, "container:"):
			ps.errorf(spec.NetworkModePos, "node %q: network-mode: %q is not done: erlab gives each node a network namespace of its own, where its links and features live; use none, or leave it out for the lab's management network", n.Name, mode)
		default:
			ps.errorf(spec.NetworkModePos, "node %q: network-mode: %q is not a mode erlab knows (none, or leave it out for the lab's management network)", n.Name, mode)
		}
	}
	if n.NetworkMode == "none" && (n.MgmtIPv4.IsValid() || n.MgmtIPv6.IsValid() || len(spec.Ports) > 0) {
		ps.errorf(spec.NetworkModePos, "node %q: network-mode none leaves it no management network, yet it has mgmt-ipv4, mgmt-ipv6 or ports", n.Name)
	}
	n.Ports = spec.Ports
	if spec.CPU != nil {
		if *spec.CPU <= 0 || *spec.CPU > 1024 {
			ps.errorf(spec.CPUPos, "node %q: cpu: %g is not a number of CPUs (such as 0.5 or 2)", n.Name, *spec.CPU)
		}
		n.CPU = *spec.CPU
	}
	n.CPUSet = deref(spec.CPUSet)
	if spec.Memory != nil {
		b, err := units.RAMInBytes(*spec.Memory)
		switch {
		case err != nil:
			ps.errorf(spec.MemoryPos, "node %q: memory: %q is not a size such as 512MB or 1GB", n.Name, *spec.Memory)
		case b < 6<<20:
			ps.errorf(spec.MemoryPos, "node %q: memory: %s is below the 6MB a container needs", n.Name, *spec.Memory)
		default:
			n.Memory = b
		}
	}
	for _, c := range spec.CapAdd {
		name := strings.TrimPrefix(strings.ToUpper(c), "CAP_")
		if !capNameRe.MatchString(name) {
			ps.errorf(spec.Pos, "node %q: cap-add: %q is not a capability name such as NET_ADMIN", n.Name, c)
			continue
		}
		n.CapAdd = append(n.CapAdd, name)
	}
	if spec.ShmSize != nil {
		if b, err := units.RAMInBytes(*spec.ShmSize); err != nil || b <= 0 {
			ps.errorf(spec.ShmSizePos, "node %q: shm-size: %q is not a size such as 64MB", n.Name, *spec.ShmSize)
		} else {
			n.ShmSize = b
		}
	}
	if d := spec.DNS; d != nil {
		n.DNS = &DNS{Search: d.Search, Options: d.Options}
		for _, s := range d.Servers {
			a, err := netip.ParseAddr(s)
			if err != nil {
				ps.errorf(d.Pos, "node %q: dns: servers: %q is not an IP address", n.Name, s)
				continue
			}
			n.DNS.Servers = append(n.DNS.Servers, a)
		}
	}
	if h := spec.Healthcheck; h != nil {
		hc := &Healthcheck{Test: h.Test}
		if len(h.Test) == 0 || (h.Test[0] != "CMD" && h.Test[0] != "CMD-SHELL" && h.Test[0] != "NONE") {
			ps.errorf(h.Pos, "node %q: healthcheck: test: give [CMD, ARG...], [CMD-SHELL, COMMAND] or [NONE]", n.Name)
		}
		for _, f := range []struct {
			key string
			v   *int
			dst *time.Duration
		}{{"start-period", h.StartPeriod, &hc.StartPeriod}, {"interval", h.Interval, &hc.Interval}, {"timeout", h.Timeout, &hc.Timeout}} {
			if f.v == nil {
				continue
			}
			if *f.v < 0 {
				ps.errorf(h.Pos, "node %q: healthcheck: %s: %d is negative (seconds)", n.Name, f.key, *f.v)
			}
			*f.dst = time.Duration(*f.v) * time.Second
		}
		if h.Retries != nil {
			if *h.Retries < 0 {
				ps.errorf(h.Pos, "node %q: healthcheck: retries: %d is negative", n.Name, *h.Retries)
			}
			hc.Retries = *h.Retries
		}
		n.Healthcheck = hc
	}
	if spec.Stages.set {
		ps.errorf(spec.Stages.pos, "node %q: stages: not done: erlab starts a lab's nodes together and runs exec once its links are up; there is no per-node stage order to wait for", n.Name)
	}
}

var capNameRe = regexp.MustCompile(`^[A-Z][A-Z_]*[A-Z]$`)

// asksMgmt says whether a node asks for the management network by name.
func asksMgmt(spec NodeSpec) bool {
	return spec.MgmtIPv4 != nil || spec.MgmtIPv6 != nil || spec.MgmtIPv4Old != nil || spec.MgmtIPv6Old != nil || len(spec.Ports) > 0
}

// joinMgmt puts the lab's container nodes (those with an image) on its
// management network, and checks their addresses there: inside its
// subnets, not its gateways, each once.
func joinMgmt(t *Topology, ps *problems) {
	if t.Mgmt == nil {
		return
	}
	m := t.Mgmt
	used := map[netip.Addr]string{}
	joined := 0
	for _, n := range t.Nodes {
		if n.Image == "" || n.NetworkMode == "none" {
			continue
		}
		n.Mgmt = m
		joined++
		for i, a := range []netip.Addr{n.MgmtIPv4, n.MgmtIPv6} {
			if !a.IsValid() {
				continue
			}
			pos := n.mgmtPos[i]
			sub := m.IPv4Subnet
			if a.Is6() {
				sub = m.IPv6Subnet
			}
			switch {
			case !sub.IsValid():
				ps.errorf(pos, "node %q: management address %s needs the mgmt: subnet of its family (it is auto)", n.Name, a)
			case !sub.Contains(a):
				ps.errorf(pos, "node %q: management address %s is not in the management subnet %s", n.Name, a, sub)
			case a == m.gateway(a.Is6()):
				ps.errorf(pos, "node %q: management address %s is the management network's gateway", n.Name, a)
			case used[a] != "":
				ps.errorf(pos, "node %q: management address %s is node %q's too", n.Name, a, used[a])
			default:
				used[a] = n.Name
			}
		}
	}
	if joined == 0 {
		ps.warnf(m.Pos, "mgmt: no container node (one with an image) joins it: the management network is not made")
	}
}
