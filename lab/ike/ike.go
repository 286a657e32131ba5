// Package ike keys IPsec tunnels with IKEv2 by running Debian's strongSwan
// (charon-systemd, driven over its vici socket) inside a node's network
// namespace. Where lab/ipsec installs SAs with keys fixed in the topology,
// here the two ends authenticate each other with a pre-shared key and
// negotiate the SAs, rekey them and detect a dead peer, as a VPN gateway
// does.
//
// Each node runs one charon for all its connections, with its own
// strongswan.conf (selected by the STRONGSWAN_CONF environment variable),
// vici socket, swanctl.conf and log under the node's directory, so any
// number of nodes coexist on one host. The recipe and its measured traps are
// in shared/docs/interop.md ("IKEv2 with Debian's strongSwan 5.9.8").
//
// A route-based connection (Conn.IfID > 0) only installs SAs and policies
// carrying that if_id: the xfrm interface with the same if_id is the
// caller's (lab/ipsec, or netlink.Xfrmi), as are the inner addresses and
// routes. A policy-based one (IfID 0) protects the traffic between its
// traffic selectors; routes are again the caller's, since charon is told
// not to install any.
//
// Start loads the connections and keys over vici (load-conn, load-shared),
// and a start script in strongswan.conf loads the same from swanctl.conf
// (swanctl --load-all) whenever charon starts, so a charon that was
// restarted has them again. Status, RekeySA and the waits use vici too
// (list-sas, rekey, initiate, and the events ike-updown, child-updown,
// ike-rekey, child-rekey).
//
// The pre-shared key goes into one file only, swanctl.conf, mode 0600 in a
// 0700 directory, and to charon in vici load-shared messages over the
// node's socket (in that directory). It never appears in an error, a log
// line, JSON or a command line.
package ike

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"regexp"
	"slices"
	"time"

	"github.com/erlab-dev/erlab/lab/ipsec/xfrm"
)

// Secret is key material: its printed, JSON and slog forms say only how long
// it is.
type Secret []byte

// String describes the secret by its length.
func (s Secret) String() string { return fmt.Sprintf("[redacted %d-byte secret]", len(s)) }

// GoString is String, so that %#v does not print the secret either.
func (s Secret) GoString() string { return s.String() }

// Format prints String for every verb (%x and %d included), so that no fmt
// verb shows the bytes.
func (s Secret) Format(f fmt.State, _ rune) { fmt.Fprint(f, s.String()) }

// MarshalJSON writes the redacted description, never the secret.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + s.String() + `"`), nil }

// LogValue keeps the secret out of slog records.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// Defaults for the timers a Conn leaves at zero.
const (
	// DefaultDPDDelay is how long a peer may stay silent before charon
	// asks it whether it is alive. With the retransmission settings
	// Start writes (3 tries, 1 s apart) a dead peer is declared dead
	// 3–4 s after it went silent, not charon's default 166 s.
	DefaultDPDDelay = time.Second
	// DefaultRekeyTime and DefaultLifeTime are the CHILD SA's: rekeyed
	// after about an hour, gone after 70 minutes if rekeying failed.
	DefaultRekeyTime = time.Hour
	DefaultLifeTime  = 70 * time.Minute
	// DefaultIKERekeyTime and DefaultIKELifeTime are the IKE SA's,
	// strongSwan's own defaults: rekeyed after 4 hours, with 10 % more
	// before it is torn down.
	DefaultIKERekeyTime = 4 * time.Hour
	DefaultIKELifeTime  = 4*time.Hour + 24*time.Minute
	// DefaultAlgorithm is used when Conn.Algorithm is empty.
	DefaultAlgorithm = xfrm.AES256GCM16
)

// Conn is one IKEv2 connection of a node: one end of a tunnel. The other end
// has Local and Remote swapped, the same PSK, Algorithm and IfID (or the
// traffic selectors swapped), and the opposite Initiator.
type Conn struct {
	// Name is unique in the node: the swanctl connection and child name.
	// Letters, digits, '-' and '_', at most 64.
	Name string `json:"name"`
	// Local and Remote are the outer addresses, both IPv4 or both IPv6.
	// They are also the IKE identities.
	Local  netip.Addr `json:"local"`
	Remote netip.Addr `json:"remote"`
	// PSK authenticates both ends. Never marshaled or printed.
	PSK Secret `json:"-"`
	// Algorithm is a lab/ipsec transform name; it selects both the ESP
	// and the IKE proposal (see Proposals). Empty means DefaultAlgorithm.
	Algorithm xfrm.Algorithm `json:"algorithm,omitempty"`
	// IfID, when not 0, makes the connection route-based: SAs and
	// policies carry this if_id and the traffic selectors are 0.0.0.0/0
	// and ::/0, so whatever is routed into the xfrm interface with the
	// same if_id is protected, in either IP family.
	IfID uint32 `json:"if_id,omitempty"`
	// LocalTS and RemoteTS are the inner subnets of a policy-based
	// connection (IfID 0): traffic between them is protected.
	LocalTS  []netip.Prefix `json:"local_ts,omitempty"`
	RemoteTS []netip.Prefix `json:"remote_ts,omitempty"`
	// Initiator makes this end set the tunnel up as soon as charon has
	// loaded it, retry a peer that does not answer, and set it up again
	// when DPD finds the peer dead or the peer closes it. The other end
	// only answers (start_action = none) and forgets a dead initiator:
	// with one end initiating, each tunnel gets one IKE SA and one CHILD
	// SA every time, where two initiating ends (or traps on both) may
	// race and leave duplicates, making SPIs, counters and rekey times
	// depend on who won.
	Initiator bool `json:"initiator,omitempty"`
	// DPDDelay is the dead peer detection interval, whole seconds; 0
	// means DefaultDPDDelay.
	DPDDelay time.Duration `json:"dpd_delay_ns,omitempty"`
	// RekeyTime and LifeTime are the CHILD SA's, whole seconds; zero
	// means DefaultRekeyTime and DefaultLifeTime (or, when only RekeyTime
	// is set, LifeTime is 10 % more). LifeTime must exceed RekeyTime.
	RekeyTime time.Duration `json:"rekey_time_ns,omitempty"`
	LifeTime  time.Duration `json:"life_time_ns,omitempty"`
	// IKERekeyTime and IKELifeTime are the same for the IKE SA, with
	// DefaultIKERekeyTime and DefaultIKELifeTime.
	IKERekeyTime time.Duration `json:"ike_rekey_time_ns,omitempty"`
	IKELifeTime  time.Duration `json:"ike_life_time_ns,omitempty"`
	// Encap forces UDP encapsulation (NAT-T): IKE moves to UDP 4500 after
	// the first exchange and ESP travels in UDP 4500, as behind a NAT.
	Encap bool `json:"encap,omitempty"`
}

// Node is what one node runs: one charon with all its connections.
type Node struct {
	// NetNS is the named network namespace charon runs in.
	NetNS string `json:"netns"`
	// Dir is the node's private directory, which must exist. Start puts
	// everything in its ike subdirectory (IKEDir): configuration, vici
	// socket, PID files and log.
	Dir   string `json:"dir"`
	Conns []Conn `json:"conns"`
}

// IKEDir is the directory, inside a node's Dir, that holds its charon's
// files. Mode 0700: swanctl.conf in it holds the pre-shared keys.
const IKEDir = "ike"

// Proposal is the pair of strongSwan proposals an algorithm maps to. Both
// ends get identical ones.
type Proposal struct {
	// IKE protects the IKE SA: encryption, PRF (and integrity for CBC),
	// Diffie-Hellman group.
	IKE string `json:"ike"`
	// ESP protects the traffic. Its Diffie-Hellman group gives perfect
	// forward secrecy to CHILD SA rekeys (the first CHILD SA comes from
	// the IKE SA's exchange and has none of its own).
	ESP string `json:"esp"`
}

// proposals maps the lab/ipsec transforms to strongSwan proposals. The
// AES-GCM pair follows the Suite B profiles of RFC 6379 (GCM-128 with
// ECP-256 and SHA-256, GCM-256 with ECP-384 and SHA-384); the AES-CBC pair
// is the classic AES/SHA-256 policy with DH group 14 (MODP-2048), the group
// RFC 8247 makes mandatory and the one Azure's VPN gateway policies name
// DHGroup14 / PFS2048.
var proposals = map[xfrm.Algorithm]Proposal{
	xfrm.AES128GCM16:  {IKE: "aes128gcm16-prfsha256-ecp256", ESP: "aes128gcm16-ecp256"},
	xfrm.AES256GCM16:  {IKE: "aes256gcm16-prfsha384-ecp384", ESP: "aes256gcm16-ecp384"},
	xfrm.AES128SHA256: {IKE: "aes128-sha256-modp2048", ESP: "aes128-sha256-modp2048"},
	xfrm.AES256SHA256: {IKE: "aes256-sha256-modp2048", ESP: "aes256-sha256-modp2048"},
}

// Proposals returns the IKE and ESP proposals for a lab/ipsec algorithm
// name (any case); empty means DefaultAlgorithm.
func Proposals(a xfrm.Algorithm) (Proposal, error) {
	if a == "" {
		a = DefaultAlgorithm
	}
	pa, err := xfrm.ParseAlgorithm(string(a))
	if err != nil {
		return Proposal{}, err
	}
	return proposals[pa], nil
}

// connName is what swanctl accepts as a section name without quoting, and
// what strongswan.conf's key syntax leaves alone (no dots).
var connName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// pathChars are the characters allowed in Dir: the path is written unquoted
// into strongswan.conf (start script, socket, log) and run by /bin/sh.
var pathChars = regexp.MustCompile(`^/[A-Za-z0-9/._+@:,=%~-]*$`)

// maxSocketPath is the longest unix socket path the kernel takes
// (sun_path is 108 bytes, NUL included).
const maxSocketPath = 107

// withDefaults returns c with its zero timers and algorithm filled in and its
// addresses and subnets normalized.
func (c Conn) withDefaults() Conn {
	if c.Algorithm == "" {
		c.Algorithm = DefaultAlgorithm
	} else if a, err := xfrm.ParseAlgorithm(string(c.Algorithm)); err == nil {
		c.Algorithm = a
	}
	if c.DPDDelay == 0 {
		c.DPDDelay = DefaultDPDDelay
	}
	c.RekeyTime, c.LifeTime = lifetimes(c.RekeyTime, c.LifeTime, DefaultRekeyTime, DefaultLifeTime)
	c.IKERekeyTime, c.IKELifeTime = lifetimes(c.IKERekeyTime, c.IKELifeTime, DefaultIKERekeyTime, DefaultIKELifeTime)
	c.Local, c.Remote = c.Local.Unmap(), c.Remote.Unmap()
	norm := func(ps []netip.Prefix) []netip.Prefix {
		var out []netip.Prefix
		for _, p := range ps {
			if p.Addr().Is4In6() && p.Bits() >= 96 {
				p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
			}
			if p.IsValid() {
				p = p.Masked()
			}
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
		return out
	}
	c.LocalTS, c.RemoteTS = norm(c.LocalTS), norm(c.RemoteTS)
	return c
}

// lifetimes fills in a rekey/life pair: both zero gives the defaults, a
// rekey time alone gets 10 % more as its life time.
func lifetimes(rekey, life, defRekey, defLife time.Duration) (time.Duration, time.Duration) {
	switch {
	case rekey == 0 && life == 0:
		return defRekey, defLife
	case rekey == 0:
		return defRekey, life
	case life == 0:
		return rekey, (rekey + rekey/10).Round(time.Second)
	}
	return rekey, life
}

// Validate checks a node for Start: its namespace and directory, and every
// connection. Its errors name the connection and field at fault and never
// hold key bytes.
func (n Node) Validate() error {
	if n.NetNS == "" {
		return errors.New("ike: node has no network namespace")
	}
	label := "ike: node " + n.NetNS
	if !filepath.IsAbs(n.Dir) || filepath.Clean(n.Dir) != n.Dir || !pathChars.MatchString(n.Dir) {
		return fmt.Errorf("%s: directory %q must be a clean absolute path of letters, digits and /._+@:,=%%~- (it is written unquoted into strongswan.conf)", label, n.Dir)
	}
	if sock := socketPath(n); len(sock) > maxSocketPath {
		return fmt.Errorf("%s: vici socket path %s is %d bytes, more than a unix socket takes (%d); use a shorter directory", label, sock, len(sock), maxSocketPath)
	}
	if len(n.Conns) == 0 {
		return fmt.Errorf("%s: no connections", label)
	}
	names := map[string]bool{}
	pairs := map[[2]netip.Addr]string{}
	var errs []error
	for _, c := range n.Conns {
		if err := c.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", label, err))
			continue
		}
		if names[c.Name] {
			errs = append(errs, fmt.Errorf("%s: connection name %q is used twice", label, c.Name))
		}
		names[c.Name] = true
		// charon picks a connection for an incoming IKE_SA_INIT by its
		// addresses and, for IKE_AUTH, by identities, which are the
		// addresses here: two connections between the same addresses
		// could not be told apart.
		pair := [2]netip.Addr{c.Local.Unmap(), c.Remote.Unmap()}
		if other, ok := pairs[pair]; ok {
			errs = append(errs, fmt.Errorf("%s: connections %s and %s both join %s and %s; one connection per pair of outer addresses (it may carry several subnets)", label, other, c.Name, pair[0], pair[1]))
		}
		pairs[pair] = c.Name
	}
	return errors.Join(errs...)
}

// Validate checks one connection: name, addresses, key, algorithm, mode and
// timers.
func (c Conn) Validate() error {
	if !connName.MatchString(c.Name) {
		return fmt.Errorf("connection name %q: 1 to 64 letters, digits, '-' or '_', starting with a letter or digit", c.Name)
	}
	bad := func(format string, a ...any) error {
		return fmt.Errorf("connection %s: %s", c.Name, fmt.Sprintf(format, a...))
	}
	if err := xfrm.CheckOuter(c.Local, c.Remote); err != nil {
		return bad("%v", err)
	}
	if len(c.PSK) == 0 {
		return bad("a pre-shared key is required")
	}
	if _, err := Proposals(c.Algorithm); err != nil {
		return bad("%v", err)
	}
	if c.IfID > 0 {
		if len(c.LocalTS) > 0 || len(c.RemoteTS) > 0 {
			return bad("traffic selectors apply to policy-based connections only; a route-based one (if_id %d) takes routes into its xfrm interface instead", c.IfID)
		}
	} else {
		if len(c.LocalTS) == 0 || len(c.RemoteTS) == 0 {
			return bad("a policy-based connection (if_id 0) needs local and remote traffic selectors")
		}
		for _, p := range slices.Concat(c.LocalTS, c.RemoteTS) {
			if !p.IsValid() || p.Addr().Zone() != "" {
				return bad("invalid traffic selector %s", p)
			}
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"DPD delay", c.DPDDelay}, {"rekey time", c.RekeyTime}, {"life time", c.LifeTime}, {"IKE rekey time", c.IKERekeyTime}, {"IKE life time", c.IKELifeTime}} {
		if d.v < 0 || d.v%time.Second != 0 {
			return bad("%s %s: a whole number of seconds, or 0 for the default", d.name, d.v)
		}
	}
	d := c.withDefaults()
	if d.LifeTime <= d.RekeyTime {
		return bad("CHILD SA life time %s must exceed its rekey time %s", d.LifeTime, d.RekeyTime)
	}
	if d.IKELifeTime <= d.IKERekeyTime {
		return bad("IKE SA life time %s must exceed its rekey time %s", d.IKELifeTime, d.IKERekeyTime)
	}
	return nil
}

// conn returns the node's connection of that name.
func (n Node) conn(name string) (Conn, bool) {
	for _, c := range n.Conns {
		if c.Name == name {
			return c, true
		}
	}
	return Conn{}, false
}

// label names the node in errors.
func (n Node) label() string { return "ike: node " + n.NetNS }
