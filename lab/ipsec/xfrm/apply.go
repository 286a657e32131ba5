package xfrm

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// ErrNotFound marks, in Status's error, a piece of the tunnel the kernel
// does not have.
var ErrNotFound = errors.New("not found")

// notFound reports the kernel's "no such SA" (ESRCH), "no such policy"
// (ENOENT) or a missing link.
func notFound(err error) bool {
	var lnf netlink.LinkNotFoundError
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) || errors.As(err, &lnf)
}

// hint adds what a kernel error most likely means when it is the kernel
// lacking a module, not the request being wrong.
func hint(err error) string {
	switch {
	case errors.Is(err, unix.EPROTONOSUPPORT):
		return " (kernel lacks ESP: CONFIG_INET_ESP / CONFIG_INET6_ESP)"
	case errors.Is(err, unix.ENOSYS):
		return " (kernel lacks the algorithm: CONFIG_CRYPTO_GCM, CONFIG_CRYPTO_SEQIV, CONFIG_CRYPTO_AUTHENC)"
	case errors.Is(err, unix.EOPNOTSUPP):
		return " (kernel lacks xfrm interfaces: CONFIG_XFRM_INTERFACE)"
	}
	return ""
}

// saName describes an SA in errors: direction, SPI, addresses.
func saName(s *netlink.XfrmState, out bool) string {
	d := "inbound"
	if out {
		d = "outbound"
	}
	return fmt.Sprintf("%s SA spi %#08x %s->%s", d, uint32(s.Spi), s.Src, s.Dst)
}

func policyName(p *netlink.XfrmPolicy) string {
	s := fmt.Sprintf("%s policy %s->%s", dirName(p.Dir), p.Src, p.Dst)
	if p.Ifid != 0 {
		s += fmt.Sprintf(" if_id %d", p.Ifid)
	}
	return s
}

// Apply installs one end of a tunnel through h, a netlink handle on the
// node's namespace that speaks both rtnetlink and XFRM (netlink.NewHandleAt
// opens both): route-based, the xfrm interface, set up; then the outbound
// and inbound SAs; then the policies that use them, so no packet meets a
// policy without its SA.
//
// Applying a tunnel again brings the kernel back to it: the interface is
// kept, SAs are replaced (their counters and sequence numbers start again,
// so re-apply both ends) and policies updated. If Apply fails midway, what
// it made stays: Remove takes it away.
func Apply(h *netlink.Handle, t Tunnel) error {
	if err := t.Validate(); err != nil {
		return err
	}
	t = t.normalized()
	if t.Mode == RouteBased {
		if err := applyLink(h, t); err != nil {
			return err
		}
	}
	for i, s := range buildStates(t) {
		if err := addState(h, &s); err != nil {
			return fmt.Errorf("%s: add %s: %w%s", t.label(), saName(&s, i == 0), err, hint(err))
		}
	}
	for _, p := range buildPolicies(t) {
		err := h.XfrmPolicyAdd(&p)
		if errors.Is(err, unix.EEXIST) {
			err = h.XfrmPolicyUpdate(&p)
		}
		if err != nil {
			return fmt.Errorf("%s: add %s: %w", t.label(), policyName(&p), err)
		}
	}
	return nil
}

// addState adds an SA, replacing one with the same identity: an update
// (XFRM_MSG_UPDSA) would keep the old keys, so the old SA is deleted first.
func addState(h *netlink.Handle, s *netlink.XfrmState) error {
	err := h.XfrmStateAdd(s)
	if !errors.Is(err, unix.EEXIST) {
		return err
	}
	if err := h.XfrmStateDel(s); err != nil && !notFound(err) {
		return err
	}
	return h.XfrmStateAdd(s)
}

// applyLink creates the xfrm interface, or checks the one there is, and
// sets it up.
func applyLink(h *netlink.Handle, t Tunnel) error {
	parentIndex := 0
	if t.Parent != "" {
		parent, err := h.LinkByName(t.Parent)
		if err != nil {
			return fmt.Errorf("%s: parent interface %s: %w", t.label(), t.Parent, err)
		}
		parentIndex = parent.Attrs().Index
	}
	link, err := h.LinkByName(t.Interface)
	switch {
	case err == nil:
		if err := sameLink(t, link, parentIndex); err != nil {
			return err
		}
	case notFound(err):
		if err := h.LinkAdd(buildLink(t, parentIndex)); err != nil {
			return fmt.Errorf("%s: create xfrm interface %s if_id %d: %w%s", t.label(), t.Interface, t.IfID, err, hint(err))
		}
		if link, err = h.LinkByName(t.Interface); err != nil {
			return fmt.Errorf("%s: xfrm interface %s: %w", t.label(), t.Interface, err)
		}
	default:
		return fmt.Errorf("%s: look up xfrm interface %s: %w", t.label(), t.Interface, err)
	}
	if t.MTU != 0 && link.Attrs().MTU != t.MTU {
		if err := h.LinkSetMTU(link, t.MTU); err != nil {
			return fmt.Errorf("%s: set MTU %d on %s: %w", t.label(), t.MTU, t.Interface, err)
		}
	}
	if err := h.LinkSetUp(link); err != nil {
		return fmt.Errorf("%s: set %s up: %w", t.label(), t.Interface, err)
	}
	return nil
}

// sameLink checks that an existing interface is this tunnel's: an xfrm
// interface with its if_id (and parent, if one is named). Apply and Remove
// leave any other device alone.
func sameLink(t Tunnel, link netlink.Link, parentIndex int) error {
	x, ok := link.(*netlink.Xfrmi)
	switch {
	case !ok:
		return fmt.Errorf("%s: interface %s exists and is a %s device, not an xfrm interface", t.label(), t.Interface, link.Type())
	case x.Ifid != t.IfID:
		return fmt.Errorf("%s: xfrm interface %s exists with if_id %d, not %d", t.label(), t.Interface, x.Ifid, t.IfID)
	case parentIndex != 0 && x.ParentIndex != parentIndex:
		return fmt.Errorf("%s: xfrm interface %s exists on another parent (index %d, not %s)", t.label(), t.Interface, x.ParentIndex, t.Parent)
	}
	return nil
}

// Remove takes away what Apply made for a tunnel end: policies, then SAs,
// then the xfrm interface (and with it the caller's inner addresses and
// routes) unless SAs of another Tunnel still use its if_id. What is already
// gone is skipped, so Remove also cleans up after a failed Apply and can
// run twice. It needs no keys.
func Remove(h *netlink.Handle, t Tunnel) error {
	if err := t.validate(); err != nil {
		return err
	}
	t = t.normalized()
	var errs []error
	for _, p := range buildPolicies(t) {
		if err := h.XfrmPolicyDel(&p); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("%s: delete %s: %w", t.label(), policyName(&p), err))
		}
	}
	for i, out := range []bool{true, false} {
		s := buildState(t, out, false)
		if err := h.XfrmStateDel(&s); err != nil && !notFound(err) {
			errs = append(errs, fmt.Errorf("%s: delete %s: %w", t.label(), saName(&s, i == 0), err))
		}
	}
	if t.Mode == RouteBased {
		if err := removeLink(h, t); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeLink deletes the tunnel's xfrm interface, if it is there, is this
// tunnel's, and no SA of another Tunnel (the other inner family) uses its
// if_id any more.
func removeLink(h *netlink.Handle, t Tunnel) error {
	link, err := h.LinkByName(t.Interface)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: look up xfrm interface %s: %w", t.label(), t.Interface, err)
	}
	if err := sameLink(t, link, 0); err != nil {
		return err
	}
	shared, err := ifIDInUse(h, t.IfID)
	if err != nil {
		return fmt.Errorf("%s: list SAs: %w", t.label(), err)
	}
	if shared {
		return nil
	}
	if err := h.LinkDel(link); err != nil && !notFound(err) {
		return fmt.Errorf("%s: delete xfrm interface %s: %w", t.label(), t.Interface, err)
	}
	return nil
}

// ifIDInUse reports whether any SA carries the if_id. The dump brings every
// SA's keys along: they are zeroed at once.
func ifIDInUse(h *netlink.Handle, ifid uint32) (bool, error) {
	states, err := kernel.Dump(func() ([]netlink.XfrmState, error) { return h.XfrmStateList(netlink.FAMILY_ALL) })
	if err != nil {
		return false, err
	}
	for i := range states {
		clearKeys(&states[i])
		if uint32(states[i].Ifid) == ifid {
			return true, nil
		}
	}
	return false, nil
}

// Info is what the kernel holds for a tunnel end. It has no key material,
// by construction: it is safe to print, log and marshal.
type Info struct {
	Name        string `json:"name,omitempty"`
	Mode        Mode   `json:"mode"`
	InnerFamily Family `json:"inner_family"`
	// Interface is the xfrm interface of a route-based tunnel; nil when
	// policy-based or missing.
	Interface *InterfaceInfo `json:"interface,omitempty"`
	// Out and In are the SAs; nil when missing.
	Out *SAInfo `json:"out"`
	In  *SAInfo `json:"in"`
	// Policies lists every policy the tunnel should have, found or not.
	Policies []PolicyInfo `json:"policies"`
}

// InterfaceInfo describes an xfrm interface.
type InterfaceInfo struct {
	Name        string `json:"name"`
	Index       int    `json:"index"`
	IfID        uint32 `json:"if_id"`
	ParentIndex int    `json:"parent_index,omitempty"`
	MTU         int    `json:"mtu"`
	Up          bool   `json:"up"`
}

// SAInfo is an SA as the kernel reports it, without its keys.
type SAInfo struct {
	SPI uint32     `json:"spi"`
	Src netip.Addr `json:"src"`
	Dst netip.Addr `json:"dst"`
	// Algorithm is erlab's name of the transform; empty when the kernel
	// holds one erlab does not configure, which KernelAlgorithm names.
	Algorithm       Algorithm `json:"algorithm,omitempty"`
	KernelAlgorithm string    `json:"kernel_algorithm"`
	ICVBits         int       `json:"icv_bits"`
	// Mode is the XFRM mode, "tunnel" for the SAs Apply makes.
	Mode string `json:"mode"`
	// InnerFamily is the family of the SA's selector: of the packets it
	// may carry.
	InnerFamily  Family     `json:"inner_family,omitempty"`
	IfID         uint32     `json:"if_id,omitempty"`
	ReqID        uint32     `json:"reqid,omitempty"`
	Encap        *EncapInfo `json:"encap,omitempty"`
	Mark         *Mark      `json:"mark,omitempty"`
	ReplayWindow int        `json:"replay_window"`

	// Counters. Seq is the last sequence number sent (outbound) or the
	// highest received (inbound).
	Bytes   uint64 `json:"bytes"`
	Packets uint64 `json:"packets"`
	Seq     uint32 `json:"seq"`
	// Drops, inbound: outside the replay window, replayed, and failing
	// the integrity check (wrong key or tampering).
	ReplayWindowDrops uint32 `json:"replay_window_drops"`
	ReplayDrops       uint32 `json:"replay_drops"`
	IntegrityFailures uint32 `json:"integrity_failures"`
}

// EncapInfo is an SA's UDP encapsulation.
type EncapInfo struct {
	Type    string `json:"type"` // "espinudp"
	SrcPort int    `json:"src_port"`
	DstPort int    `json:"dst_port"`
}

// PolicyInfo is one of a tunnel's policies.
type PolicyInfo struct {
	Dir     string       `json:"dir"` // out, in or fwd
	Src     netip.Prefix `json:"src"`
	Dst     netip.Prefix `json:"dst"`
	IfID    uint32       `json:"if_id,omitempty"`
	Present bool         `json:"present"`
}

// Status reads a tunnel end back from the kernel: the SAs with their
// algorithm, encapsulation, replay window and counters, the policies, and
// the xfrm interface. It needs no keys and returns none. It returns what it
// found even when its error lists pieces that are missing (wrapping
// ErrNotFound) or could not be read.
func Status(h *netlink.Handle, t Tunnel) (Info, error) {
	if err := t.validate(); err != nil {
		return Info{}, err
	}
	t = t.normalized()
	info := Info{Name: t.Name, Mode: t.Mode, InnerFamily: t.innerFamily()}
	var errs []error
	for i, out := range []bool{true, false} {
		id := buildState(t, out, false)
		s, err := h.XfrmStateGet(&id)
		if err != nil {
			if notFound(err) {
				err = ErrNotFound
			}
			errs = append(errs, fmt.Errorf("%s: %s: %w", t.label(), saName(&id, i == 0), err))
			continue
		}
		sa := saInfo(s, out, t.ipv6())
		clearKeys(s)
		if out {
			info.Out = &sa
		} else {
			info.In = &sa
		}
	}
	for _, p := range buildPolicies(t) {
		pi := PolicyInfo{Dir: dirName(p.Dir), IfID: uint32(p.Ifid), Present: true}
		pi.Src, _ = netip.ParsePrefix(p.Src.String())
		pi.Dst, _ = netip.ParsePrefix(p.Dst.String())
		if _, err := h.XfrmPolicyGet(&p); err != nil {
			pi.Present = false
			if notFound(err) {
				err = ErrNotFound
			}
			errs = append(errs, fmt.Errorf("%s: %s: %w", t.label(), policyName(&p), err))
		}
		info.Policies = append(info.Policies, pi)
	}
	if t.Mode == RouteBased {
		link, err := h.LinkByName(t.Interface)
		switch {
		case err != nil:
			if notFound(err) {
				err = ErrNotFound
			}
			errs = append(errs, fmt.Errorf("%s: xfrm interface %s: %w", t.label(), t.Interface, err))
		default:
			a := link.Attrs()
			ii := &InterfaceInfo{Name: a.Name, Index: a.Index, ParentIndex: a.ParentIndex, MTU: a.MTU, Up: a.Flags&net.FlagUp != 0}
			if x, ok := link.(*netlink.Xfrmi); ok {
				ii.IfID = x.Ifid
			}
			info.Interface = ii
		}
	}
	return info, errors.Join(errs...)
}

// saInfo converts an SA the kernel returned, leaving its keys behind. out
// tells its direction; v6 the outer family, to undo a misreading of the
// netlink library: it takes an IPv6 address whose last 96 bits are zero for
// an IPv4 one.
func saInfo(s *netlink.XfrmState, out, v6 bool) SAInfo {
	sa := SAInfo{
		SPI:               uint32(s.Spi),
		Src:               kernelAddr(s.Src, v6),
		Dst:               kernelAddr(s.Dst, v6),
		Mode:              s.Mode.String(),
		IfID:              uint32(s.Ifid),
		ReqID:             uint32(s.Reqid),
		ReplayWindow:      s.ReplayWindow,
		Bytes:             s.Statistics.Bytes,
		Packets:           s.Statistics.Packets,
		ReplayWindowDrops: s.Statistics.ReplayWindow,
		ReplayDrops:       s.Statistics.Replay,
		IntegrityFailures: s.Statistics.Failed,
	}
	sa.Algorithm, sa.KernelAlgorithm, sa.ICVBits = algorithmOf(s)
	if s.Selector != nil && s.Selector.Dst != nil {
		// The library gives a wildcard selector's family as 0.0.0.0 or ::.
		sa.InnerFamily = IPv6
		if s.Selector.Dst.IP.To4() != nil {
			sa.InnerFamily = IPv4
		}
	}
	if s.Encap != nil {
		sa.Encap = &EncapInfo{Type: s.Encap.Type.String(), SrcPort: s.Encap.SrcPort, DstPort: s.Encap.DstPort}
	}
	if s.Mark != nil {
		sa.Mark = &Mark{Value: s.Mark.Value, Mask: s.Mark.Mask}
	}
	if s.Replay != nil {
		// Legacy replay state: oseq counts what was sent, seq is the
		// highest sequence number received.
		sa.Seq = s.Replay.Seq
		if out {
			sa.Seq = s.Replay.OSeq
		}
	}
	return sa
}

// algorithmOf names an SA's transform from the kernel's algorithm names and
// key lengths.
func algorithmOf(s *netlink.XfrmState) (a Algorithm, kernelName string, icv int) {
	switch {
	case s.Aead != nil:
		kernelName, icv = s.Aead.Name, s.Aead.ICVLen
		if s.Aead.Name == kernelGCM && icv == icvBits {
			a = matchAlgorithm(true, len(s.Aead.Key), 0)
		}
	case s.Crypt != nil && s.Auth != nil:
		kernelName, icv = s.Crypt.Name+"+"+s.Auth.Name, s.Auth.TruncateLen
		if s.Crypt.Name == kernelCBC && s.Auth.Name == kernelHMAC256 && icv == icvBits {
			a = matchAlgorithm(false, len(s.Crypt.Key), len(s.Auth.Key))
		}
	case s.Crypt != nil:
		kernelName = s.Crypt.Name
	case s.Auth != nil:
		kernelName, icv = s.Auth.Name, s.Auth.TruncateLen
	}
	return a, kernelName, icv
}

func matchAlgorithm(aead bool, encLen, authLen int) Algorithm {
	for a, s := range algSpecs {
		if s.aead == aead && s.encLen == encLen && s.authLen == authLen {
			return a
		}
	}
	return ""
}

// clearKeys zeroes the key bytes of an SA read from the kernel, so they do
// not linger in memory longer than the read.
func clearKeys(s *netlink.XfrmState) {
	for _, a := range []*netlink.XfrmStateAlgo{s.Aead, s.Crypt, s.Auth} {
		if a != nil {
			clear(a.Key)
			a.Key = nil
		}
	}
}

// kernelAddr converts an address the netlink library parsed; see saInfo.
func kernelAddr(ip net.IP, v6 bool) netip.Addr {
	a, ok := netip.AddrFromSlice(ip)
	if !ok {
		return netip.Addr{}
	}
	if !v6 {
		return a.Unmap()
	}
	if a.Is4In6() {
		v4 := a.Unmap().As4()
		var b [16]byte
		copy(b[:], v4[:])
		return netip.AddrFrom16(b)
	}
	return a
}

// ListenEncap opens the UDP socket the kernel needs to take ESP-in-UDP in:
// arriving datagrams on a port with no such socket are refused with an ICMP
// port unreachable, SAs or not. The socket is bound to local (IPv4 or IPv6)
// and port (0: NATTPort) and marked UDP_ENCAP_ESPINUDP, so the kernel hands
// ESP in it to XFRM; nothing needs to read it. It belongs to the network
// namespace of the calling thread: open it from a thread locked into the
// node's namespace. Decapsulation works for as long as it is open, so keep
// it open (for instance in a process that lives in the node) as long as the
// tunnel; one socket serves every tunnel on that address and port.
func ListenEncap(local netip.Addr, port uint16) (*net.UDPConn, error) {
	if port == 0 {
		port = NATTPort
	}
	local = local.Unmap()
	network := "udp4"
	if local.Is6() {
		network = "udp6"
	}
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_UDP, unix.UDP_ENCAP, unix.UDP_ENCAP_ESPINUDP)
		}); err != nil {
			return err
		}
		return serr
	}}
	addr := netip.AddrPortFrom(local, port)
	pc, err := lc.ListenPacket(context.Background(), network, addr.String())
	if err != nil {
		return nil, fmt.Errorf("ESP-in-UDP socket on %s: %w", addr, err)
	}
	return pc.(*net.UDPConn), nil
}
