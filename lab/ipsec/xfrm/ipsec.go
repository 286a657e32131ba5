// Package xfrm configures static-key IPsec (ESP, tunnel mode) between two
// nodes through XFRM netlink: the security associations (states), the
// policies that steer traffic into them, and for a route-based tunnel the
// xfrm interface whose if_id ties the three together. It is what `ip xfrm
// state add`, `ip xfrm policy add` and `ip link add type xfrm` would do, but
// through github.com/vishvananda/netlink, so no key ever appears on a command
// line. There is no IKE: both ends are given the same SPIs and keys.
//
// A Tunnel describes one end. Apply installs it, Remove takes it down again
// and Status reads back what the kernel holds, counters included, without
// the keys.
package xfrm

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/netip"
	"slices"
	"strings"
)

// Algorithm names an ESP transform, as strongSwan's proposal keywords do.
type Algorithm string

// The transforms erlab supports. The GCM ones are AEAD (rfc4106(gcm(aes)))
// with a 16-byte (128-bit) ICV; the SHA-256 ones are AES-CBC with
// HMAC-SHA-256 truncated to 128 bits (RFC 4868).
const (
	AES128GCM16  Algorithm = "aes128gcm16"
	AES256GCM16  Algorithm = "aes256gcm16"
	AES128SHA256 Algorithm = "aes128-sha256"
	AES256SHA256 Algorithm = "aes256-sha256"
)

// SaltLen is the length of the salt that ends an AES-GCM key: rfc4106 takes
// the AES key followed by a 4-byte nonce salt as one key.
const SaltLen = 4

// Kernel names of the transforms (crypto API templates).
const (
	kernelGCM     = "rfc4106(gcm(aes))"
	kernelCBC     = "cbc(aes)"
	kernelHMAC256 = "hmac(sha256)"
	icvBits       = 128
	hmacSHA256Len = 32
	aes128KeyLen  = 16
	aes256KeyLen  = 32
)

// algSpec is what the kernel needs for a transform.
type algSpec struct {
	aead    bool
	encLen  int // cipher key bytes, the salt included for AEAD
	authLen int // HMAC key bytes; 0 for AEAD
}

var algSpecs = map[Algorithm]algSpec{
	AES128GCM16:  {aead: true, encLen: aes128KeyLen + SaltLen},
	AES256GCM16:  {aead: true, encLen: aes256KeyLen + SaltLen},
	AES128SHA256: {encLen: aes128KeyLen, authLen: hmacSHA256Len},
	AES256SHA256: {encLen: aes256KeyLen, authLen: hmacSHA256Len},
}

// Algorithms lists the supported transforms, AEAD first.
func Algorithms() []Algorithm {
	return []Algorithm{AES128GCM16, AES256GCM16, AES128SHA256, AES256SHA256}
}

// ParseAlgorithm reads a transform name, ignoring case and surrounding
// blanks: "aes128gcm16", "AES256-SHA256", ...
func ParseAlgorithm(s string) (Algorithm, error) {
	a := Algorithm(strings.ToLower(strings.TrimSpace(s)))
	if _, ok := algSpecs[a]; !ok {
		return "", fmt.Errorf("unknown IPsec algorithm %q (%s)", s, algorithmList())
	}
	return a, nil
}

func algorithmList() string {
	var names []string
	for _, a := range Algorithms() {
		names = append(names, string(a))
	}
	return strings.Join(names, ", ")
}

// Valid reports whether a is one of the supported transforms.
func (a Algorithm) Valid() bool {
	_, ok := algSpecs[a]
	return ok
}

// AEAD reports a combined-mode transform (AES-GCM), whose key carries the
// salt and which has no separate integrity key.
func (a Algorithm) AEAD() bool { return algSpecs[a].aead }

// KeyLen gives the key lengths, in bytes, one direction of a tunnel needs:
// enc for Key.Enc (for AES-GCM the AES key and the 4-byte salt: 20 or 36),
// auth for Key.Auth (32 for HMAC-SHA-256, 0 for AES-GCM). Both are 0 for an
// unknown algorithm.
func (a Algorithm) KeyLen() (enc, auth int) {
	s := algSpecs[a]
	return s.encLen, s.authLen
}

// CheckKey tells whether k has the lengths a needs. Its error gives lengths
// only, never key bytes.
func (a Algorithm) CheckKey(k Key) error {
	s, ok := algSpecs[a]
	if !ok {
		return fmt.Errorf("unknown IPsec algorithm %q (%s)", string(a), algorithmList())
	}
	if len(k.Enc) != s.encLen {
		what := "an encryption key"
		if s.aead {
			what = fmt.Sprintf("an AES key and a %d-byte salt", SaltLen)
		}
		return fmt.Errorf("%s needs %s: %d bytes, not %d", a, what, s.encLen, len(k.Enc))
	}
	if len(k.Auth) != s.authLen {
		if s.authLen == 0 {
			return fmt.Errorf("%s takes no integrity key (AES-GCM authenticates with its own key); got %d bytes", a, len(k.Auth))
		}
		return fmt.Errorf("%s needs an HMAC-SHA-256 key of %d bytes, not %d", a, s.authLen, len(k.Auth))
	}
	return nil
}

// Key is the key material of one direction. Its String, GoString, JSON and
// slog forms are redacted, so printing or marshaling a Tunnel shows no key.
type Key struct {
	// Enc is the cipher key. For AES-GCM it is the AES key followed by the
	// 4-byte salt, the layout rfc4106 (and `ip xfrm ... aead`) expects.
	Enc []byte
	// Auth is the HMAC-SHA-256 key of an AES-CBC transform; empty for GCM.
	Auth []byte
}

// String describes the key by its lengths only.
func (k Key) String() string {
	if len(k.Auth) == 0 {
		return fmt.Sprintf("[redacted %d-byte key]", len(k.Enc))
	}
	return fmt.Sprintf("[redacted %d+%d-byte key]", len(k.Enc), len(k.Auth))
}

// GoString is String, so that %#v does not print the key either.
func (k Key) GoString() string { return k.String() }

// MarshalJSON writes the redacted description, never the key.
func (k Key) MarshalJSON() ([]byte, error) { return []byte(`"` + k.String() + `"`), nil }

// LogValue keeps the key out of slog records.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// equal compares key material in constant time.
func (k Key) equal(o Key) bool {
	return subtle.ConstantTimeCompare(k.Enc, o.Enc) == 1 && subtle.ConstantTimeCompare(k.Auth, o.Auth) == 1
}

// Mode is how traffic enters a tunnel.
type Mode string

// Tunnel modes.
const (
	// RouteBased: an xfrm interface with an if_id; whatever of the
	// tunnel's inner family is routed into it is encrypted. Policies and
	// states carry the if_id and match any address.
	RouteBased Mode = "route"
	// PolicyBased: policies for given inner subnets encrypt the traffic
	// between them, whatever interface the route names.
	PolicyBased Mode = "policy"
)

// Family is an IP version: IPv4 or IPv6.
type Family int

// IP versions.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func familyOf(a netip.Addr) Family {
	if a.Unmap().Is4() {
		return IPv4
	}
	return IPv6
}

// UDPEncap asks for ESP in UDP (RFC 3948, NAT traversal): each ESP packet
// travels in a UDP datagram between the two ports.
type UDPEncap struct {
	LocalPort  uint16 `json:"local_port,omitempty"`  // 0: NATTPort
	RemotePort uint16 `json:"remote_port,omitempty"` // 0: NATTPort
}

// NATTPort is the IKE NAT-T port, 4500, the default for both ends.
const NATTPort = 4500

func (e UDPEncap) ports() (local, remote uint16) {
	local, remote = e.LocalPort, e.RemotePort
	if local == 0 {
		local = NATTPort
	}
	if remote == 0 {
		remote = NATTPort
	}
	return local, remote
}

// Mark is an XFRM mark: a packet matches when its mark ANDed with Mask
// equals Value. A zero Mask means all ones.
type Mark struct {
	Value uint32 `json:"value"`
	Mask  uint32 `json:"mask,omitempty"`
}

// Replay window sizes.
const (
	// DefaultReplayWindow is used when Tunnel.ReplayWindow is 0: 32 packets,
	// the most the kernel's legacy (non-ESN) replay state holds — its
	// bitmap is one 32-bit word and larger windows are silently cut to 32
	// — and strongSwan's default too.
	DefaultReplayWindow = 32
	// MaxReplayWindow is the largest window accepted, for the same reason.
	MaxReplayWindow = 32
	// NoReplayProtection as Tunnel.ReplayWindow turns replay checks off.
	NoReplayProtection = -1
)

// MinSPI is the smallest SPI a tunnel may use: 1-255 are reserved by IANA
// (RFC 4303) and 0 means none.
const MinSPI = 0x100

// Tunnel is one end of a static-key ESP tunnel. The other end is its Mirror,
// with its own interface and parent names.
type Tunnel struct {
	// Name identifies the tunnel in errors; it does not reach the kernel.
	Name string `json:"name,omitempty"`
	// Local and Remote are the outer addresses, both IPv4 or both IPv6.
	Local  netip.Addr `json:"local"`
	Remote netip.Addr `json:"remote"`
	Mode   Mode       `json:"mode"`

	// Route-based: the xfrm interface. Apply creates it and sets it up; the
	// caller adds the inner addresses and routes, which makes the route to
	// the far inner addresses go through it.
	Interface string `json:"interface,omitempty"`
	IfID      uint32 `json:"if_id,omitempty"`
	// Parent optionally names the underlay interface: the interface's
	// encrypted packets are then routed out of it.
	Parent string `json:"parent,omitempty"`
	MTU    int    `json:"mtu,omitempty"` // 0: the kernel's default

	// Policy-based: traffic from any of LocalNets to any of RemoteNets is
	// encrypted; traffic the other way must arrive encrypted. All of one IP
	// family. The caller provides the routes.
	LocalNets  []netip.Prefix `json:"local_nets,omitempty"`
	RemoteNets []netip.Prefix `json:"remote_nets,omitempty"`

	// InnerFamily is the IP version of the traffic inside the tunnel; 0
	// means that of the subnets (policy-based) or of the outer addresses
	// (route-based). It may differ from the outer one: IPv6 over IPv4 and
	// the reverse work. An SA carries one inner family only (the netlink
	// library cannot ask the kernel for family-less selectors), so a
	// route-based interface carrying both is two Tunnels with the same
	// Interface and IfID, one per family, each with its own SPIs and keys.
	InnerFamily Family `json:"inner_family,omitempty"`

	// SPIOut names the SA this end sends with (the peer's SPIIn), SPIIn the
	// one it receives with. Both at least MinSPI.
	SPIOut uint32 `json:"spi_out"`
	SPIIn  uint32 `json:"spi_in"`

	Algorithm Algorithm `json:"algorithm"`
	// KeyOut encrypts what this end sends, KeyIn what it receives: the
	// peer's KeyIn and KeyOut. They are never marshaled. Apply needs them;
	// Remove and Status do not, so a Tunnel read back from JSON can still
	// be torn down and inspected.
	KeyOut Key `json:"-"`
	KeyIn  Key `json:"-"`

	// ReplayWindow is the inbound anti-replay window in packets: 0 means
	// DefaultReplayWindow, NoReplayProtection turns the check off, at most
	// MaxReplayWindow.
	ReplayWindow int `json:"replay_window,omitempty"`
	// ReqID, if not 0, binds the policies to these SAs only; it matters
	// when several tunnels join the same outer addresses.
	ReqID uint32 `json:"reqid,omitempty"`
	// Encap, if set, carries ESP in UDP. The receiving end then needs an
	// open encapsulation socket: see ListenEncap.
	Encap *UDPEncap `json:"encap,omitempty"`
	// Mark, if set, is put on the outbound SA and outbound policies: only
	// packets carrying it are encrypted. Inbound SAs and policies are left
	// unmarked, since arriving ESP carries no mark for the SA lookup.
	Mark *Mark `json:"mark,omitempty"`
}

// label names the tunnel in errors.
func (t Tunnel) label() string {
	if t.Name != "" {
		return "ipsec tunnel " + t.Name
	}
	return fmt.Sprintf("ipsec tunnel %s->%s", t.Local, t.Remote)
}

// normalized returns t with IPv4-mapped IPv6 addresses as plain IPv4 and
// subnets masked, which is how the kernel keeps them, and each subnet once.
func (t Tunnel) normalized() Tunnel {
	t.Local, t.Remote = t.Local.Unmap(), t.Remote.Unmap()
	norm := func(ps []netip.Prefix) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range ps {
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			if p = p.Masked(); !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
		return out
	}
	t.LocalNets, t.RemoteNets = norm(t.LocalNets), norm(t.RemoteNets)
	return t
}

// ipv6 reports an IPv6 outer family.
func (t Tunnel) ipv6() bool { return t.Local.Unmap().Is6() }

// innerFamily is the family of the traffic the tunnel carries.
func (t Tunnel) innerFamily() Family {
	switch {
	case t.InnerFamily != 0:
		return t.InnerFamily
	case t.Mode == PolicyBased && len(t.LocalNets) > 0:
		return familyOf(t.LocalNets[0].Addr())
	}
	return familyOf(t.Local)
}

// replayWindow is the window to configure.
func (t Tunnel) replayWindow() int {
	switch t.ReplayWindow {
	case 0:
		return DefaultReplayWindow
	case NoReplayProtection:
		return 0
	}
	return t.ReplayWindow
}

// Validate checks a tunnel for Apply: addresses, mode, SPIs, algorithm and
// key lengths. Its errors name the field at fault and never hold key bytes.
func (t Tunnel) Validate() error {
	if err := t.validate(); err != nil {
		return err
	}
	return t.validateKeys()
}

// CheckOuter checks a tunnel's outer addresses: both given, of one IP
// version, unicast, without a zone, and not the same.
func CheckOuter(local, remote netip.Addr) error {
	l, r := local.Unmap(), remote.Unmap()
	switch {
	case !l.IsValid() || !r.IsValid():
		return fmt.Errorf("local and remote outer addresses are required")
	case l.Is4() != r.Is4():
		return fmt.Errorf("outer addresses %s and %s are of different families", l, r)
	case l.IsUnspecified() || r.IsUnspecified() || l.IsMulticast() || r.IsMulticast():
		return fmt.Errorf("outer addresses must be unicast, not %s and %s", l, r)
	case l.Zone() != "" || r.Zone() != "":
		return fmt.Errorf("outer addresses cannot carry a zone (%s, %s)", l, r)
	case l == r:
		return fmt.Errorf("local and remote outer addresses are both %s", l)
	}
	return nil
}

// validate checks all but the keys: enough for Remove and Status.
func (t Tunnel) validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%s: %s", t.label(), fmt.Sprintf(format, a...))
	}
	if err := CheckOuter(t.Local, t.Remote); err != nil {
		return bad("%v", err)
	}
	if t.SPIOut < MinSPI || t.SPIIn < MinSPI {
		return bad("SPIs must be at least %#x (out %#x, in %#x)", MinSPI, t.SPIOut, t.SPIIn)
	}
	if !t.Algorithm.Valid() {
		return bad("unknown algorithm %q (%s)", string(t.Algorithm), algorithmList())
	}
	if t.ReplayWindow < NoReplayProtection || t.ReplayWindow > MaxReplayWindow {
		return bad("replay window %d out of range: 0 (default %d) to %d, or %d for none; larger windows need ESN, which erlab does not set up",
			t.ReplayWindow, DefaultReplayWindow, MaxReplayWindow, NoReplayProtection)
	}
	if t.InnerFamily != 0 && t.InnerFamily != IPv4 && t.InnerFamily != IPv6 {
		return bad("inner family %d: 4, 6, or 0 for the default", t.InnerFamily)
	}
	if t.Encap != nil && (t.Encap.LocalPort == 500 || t.Encap.RemotePort == 500) {
		return bad("UDP encapsulation on port 500 would be taken for IKE; use %d", NATTPort)
	}
	switch t.Mode {
	case RouteBased:
		if err := checkIfName(t.Interface); err != nil {
			return bad("xfrm interface: %v", err)
		}
		if t.IfID == 0 {
			return bad("a route-based tunnel needs a non-zero if_id")
		}
		if t.MTU < 0 {
			return bad("MTU %d is negative", t.MTU)
		}
		if len(t.LocalNets) > 0 || len(t.RemoteNets) > 0 {
			return bad("inner subnets apply to policy-based tunnels only; a route-based one takes routes instead")
		}
	case PolicyBased:
		if t.Interface != "" || t.IfID != 0 || t.Parent != "" || t.MTU != 0 {
			return bad("interface, if_id, parent and MTU apply to route-based tunnels only")
		}
		if len(t.LocalNets) == 0 || len(t.RemoteNets) == 0 {
			return bad("a policy-based tunnel needs local and remote inner subnets")
		}
		fam := t.InnerFamily
		for _, p := range slices.Concat(t.LocalNets, t.RemoteNets) {
			if !p.IsValid() || p.Addr().Zone() != "" {
				return bad("invalid inner subnet %s", p)
			}
			if fam == 0 {
				fam = familyOf(p.Addr())
			}
			if familyOf(p.Addr()) != fam {
				return bad("inner subnets must all be IPv%d, not %s: an SA carries one family (a second Tunnel with other SPIs and keys can carry the other)", fam, p)
			}
		}
	case "":
		return bad("mode is required: %q or %q", RouteBased, PolicyBased)
	default:
		return bad("unknown mode %q: %q or %q", string(t.Mode), RouteBased, PolicyBased)
	}
	return nil
}

func (t Tunnel) validateKeys() error {
	if err := t.Algorithm.CheckKey(t.KeyOut); err != nil {
		return fmt.Errorf("%s: outbound key: %w", t.label(), err)
	}
	if err := t.Algorithm.CheckKey(t.KeyIn); err != nil {
		return fmt.Errorf("%s: inbound key: %w", t.label(), err)
	}
	// GCM's nonce is the salt and the sequence number, which both
	// directions count from 1: one key both ways repeats nonces.
	if t.Algorithm.AEAD() && t.KeyOut.equal(t.KeyIn) {
		return fmt.Errorf("%s: the outbound and inbound keys are the same; AES-GCM would reuse nonces, so each direction needs its own key", t.label())
	}
	return nil
}

// checkIfName applies the kernel's rules for an interface name.
func checkIfName(name string) error {
	switch {
	case name == "":
		return errors.New("a name is required")
	case len(name) > 15:
		return fmt.Errorf("name %q is longer than 15 bytes", name)
	case name == "." || name == ".." || strings.ContainsAny(name, "/: \t\n"):
		return fmt.Errorf("name %q is not a valid interface name", name)
	}
	return nil
}

// subnetPairs lists the (local, remote) subnet pairs, each of which gets
// its policies.
func (t Tunnel) subnetPairs() [][2]netip.Prefix {
	var pairs [][2]netip.Prefix
	for _, l := range t.LocalNets {
		for _, r := range t.RemoteNets {
			pairs = append(pairs, [2]netip.Prefix{l, r})
		}
	}
	return pairs
}

// Mirror returns the other end of the tunnel: addresses, SPIs, keys, subnets
// and encapsulation ports swapped. Interface, if_id, parent and MTU are
// copied, for the caller to change where the peer's differ.
func (t Tunnel) Mirror() Tunnel {
	m := t
	m.Local, m.Remote = t.Remote, t.Local
	m.SPIOut, m.SPIIn = t.SPIIn, t.SPIOut
	m.KeyOut, m.KeyIn = t.KeyIn, t.KeyOut
	m.LocalNets, m.RemoteNets = slices.Clone(t.RemoteNets), slices.Clone(t.LocalNets)
	if t.Encap != nil {
		m.Encap = &UDPEncap{LocalPort: t.Encap.RemotePort, RemotePort: t.Encap.LocalPort}
	}
	if t.Mark != nil {
		mk := *t.Mark
		m.Mark = &mk
	}
	return m
}

// SPIPair derives the two SPIs of a tunnel from its name, the same on every
// run: aToB for what end A sends (A's SPIOut, B's SPIIn), bToA for the
// other direction. Both are at least MinSPI and they differ, so a capture
// tells the directions apart; different names give different SPIs but for
// a 1 in 2^32 chance.
func SPIPair(name string) (aToB, bToA uint32) {
	sum := sha256.Sum256([]byte("erlab ipsec spi\x00" + name))
	spi := func(b []byte) uint32 {
		return MinSPI + binary.BigEndian.Uint32(b)%(math.MaxUint32-MinSPI+1)
	}
	aToB = spi(sum[0:4])
	for i := 4; i+4 <= len(sum); i += 4 {
		if bToA = spi(sum[i : i+4]); bToA != aToB {
			return aToB, bToA
		}
	}
	return aToB, aToB ^ 1
}
