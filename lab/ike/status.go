package ike

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"time"

	"github.com/strongswan/govici/vici"
)

// ConnInfo is one connection of a node as its charon reports it (vici
// list-sas). It holds no key material: it is safe to print, log and
// marshal.
type ConnInfo struct {
	Name string `json:"name"`
	// IKEState and ChildState are those of the SAs in use (see Active):
	// ESTABLISHED, CONNECTING, REKEYING, DELETING... for the IKE SA;
	// INSTALLED, REKEYING, REKEYED, DELETING, DELETED... for the CHILD SA.
	// Empty when there is none.
	IKEState   string `json:"ike_state"`
	ChildState string `json:"child_state"`
	// IKE lists the connection's IKE SAs, the one in use first; there are
	// more than one for a moment while an IKE SA is rekeyed.
	IKE []IKEInfo `json:"ike_sas"`
}

// IKEInfo is an IKE SA.
type IKEInfo struct {
	UniqueID  uint32         `json:"unique_id"`
	State     string         `json:"state"`
	Local     netip.AddrPort `json:"local"`
	Remote    netip.AddrPort `json:"remote"`
	LocalID   string         `json:"local_id,omitempty"`
	RemoteID  string         `json:"remote_id,omitempty"`
	Initiator bool           `json:"initiator"`
	// The IKE SPIs (public: they are in every IKE packet's header), in
	// hex.
	InitiatorSPI string `json:"initiator_spi"`
	ResponderSPI string `json:"responder_spi"`
	// NAT is set when a NAT was detected, or faked to force UDP
	// encapsulation (Conn.Encap): IKE and ESP then use UDP 4500.
	NAT bool `json:"nat,omitempty"`
	// The negotiated transforms, as strongSwan names them
	// ("AES_GCM_16-256", "PRF_HMAC_SHA2_384", "ECP_384").
	Encryption string `json:"encryption,omitempty"`
	Integrity  string `json:"integrity,omitempty"`
	PRF        string `json:"prf,omitempty"`
	DHGroup    string `json:"dh_group,omitempty"`
	// Established is how long ago the SA was established (0 before);
	// RekeyIn how long until charon rekeys it.
	Established time.Duration `json:"established_ns,omitempty"`
	RekeyIn     time.Duration `json:"rekey_in_ns,omitempty"`
	// Tasks are the exchanges in progress, which say what a CONNECTING SA
	// waits for.
	Tasks []string `json:"tasks,omitempty"`
	// Children are the IKE SA's CHILD SAs, the one in use first.
	Children []ChildInfo `json:"children"`
}

// ChildInfo is a CHILD SA: a pair of ESP SAs, one each way.
type ChildInfo struct {
	UniqueID uint32 `json:"unique_id"`
	ReqID    uint32 `json:"reqid"`
	State    string `json:"state"`
	Mode     string `json:"mode"`     // TUNNEL
	Protocol string `json:"protocol"` // ESP
	Encap    bool   `json:"encap,omitempty"`
	// SPIIn is the SPI of the inbound ESP SA (the peer's SPIOut).
	SPIIn   uint32 `json:"spi_in"`
	SPIOut  uint32 `json:"spi_out"`
	IfIDIn  uint32 `json:"if_id_in,omitempty"`
	IfIDOut uint32 `json:"if_id_out,omitempty"`
	// The transforms, as strongSwan names them; DHGroup only when the SA
	// came from a rekey with perfect forward secrecy.
	Encryption string `json:"encryption,omitempty"`
	Integrity  string `json:"integrity,omitempty"`
	DHGroup    string `json:"dh_group,omitempty"`
	// Counters, from the kernel's SAs.
	BytesIn    uint64 `json:"bytes_in"`
	PacketsIn  uint64 `json:"packets_in"`
	BytesOut   uint64 `json:"bytes_out"`
	PacketsOut uint64 `json:"packets_out"`
	// Installed is how long ago the SA was installed; RekeyIn and
	// ExpiresIn how long until charon rekeys it and until it is gone.
	Installed time.Duration  `json:"installed_ns"`
	RekeyIn   time.Duration  `json:"rekey_in_ns,omitempty"`
	ExpiresIn time.Duration  `json:"expires_in_ns,omitempty"`
	LocalTS   []netip.Prefix `json:"local_ts"`
	RemoteTS  []netip.Prefix `json:"remote_ts"`
}

// Active returns the IKE SA and CHILD SA in use, nil when there is none:
// an established IKE SA before others and an installed CHILD SA before
// others, the newest first.
func (c ConnInfo) Active() (*IKEInfo, *ChildInfo) {
	if len(c.IKE) == 0 {
		return nil, nil
	}
	ike := &c.IKE[0]
	if len(ike.Children) == 0 {
		return ike, nil
	}
	return ike, &ike.Children[0]
}

// Established reports an established IKE SA with an installed CHILD SA.
func (c ConnInfo) Established() bool {
	return c.IKEState == "ESTABLISHED" && c.ChildState == "INSTALLED"
}

// Status asks a node's charon for its SAs and reports each of the node's
// connections, in order, whether it has SAs or not.
func Status(n Node) ([]ConnInfo, error) {
	ctx, cancel := context.WithTimeout(context.Background(), viciTimeout)
	defer cancel()
	c, err := dial(ctx, n)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	sas, err := c.listSAs(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", n.label(), err)
	}
	var infos []ConnInfo
	for _, cn := range n.Conns {
		infos = append(infos, connInfo(cn.Name, sas))
	}
	return infos, nil
}

// connInfo gathers the SAs of one connection, those in use first.
func connInfo(name string, sas map[string][]IKEInfo) ConnInfo {
	ci := ConnInfo{Name: name, IKE: sas[name]}
	if ci.IKE == nil {
		ci.IKE = []IKEInfo{}
	}
	rank := func(state, want string, id uint32) int64 {
		r := int64(id)
		if state == want {
			r += 1 << 32
		}
		return r
	}
	for i := range ci.IKE {
		slices.SortStableFunc(ci.IKE[i].Children, func(x, y ChildInfo) int {
			return cmp.Compare(rank(y.State, "INSTALLED", y.UniqueID), rank(x.State, "INSTALLED", x.UniqueID))
		})
	}
	// An IKE SA whose CHILD SA is installed outranks the others: during an
	// IKE rekey the new IKE SA is established before the CHILD SAs move.
	ikeRank := func(s IKEInfo) int64 {
		r := rank(s.State, "ESTABLISHED", s.UniqueID)
		if len(s.Children) > 0 && s.Children[0].State == "INSTALLED" {
			r += 1 << 33
		}
		return r
	}
	slices.SortStableFunc(ci.IKE, func(x, y IKEInfo) int { return cmp.Compare(ikeRank(y), ikeRank(x)) })
	if ike, child := ci.Active(); ike != nil {
		ci.IKEState = ike.State
		if child != nil {
			ci.ChildState = child.State
		}
	}
	return ci
}

// addSAs adds the IKE SAs of a list-sa event (one section per IKE SA, named
// by its connection) to sas, by connection name. The event's format is the
// vici README's; swanctl --list-sas prints the same keys.
func addSAs(sas map[string][]IKEInfo, m *vici.Message) error {
	for _, name := range m.Keys() {
		s, ok := m.Get(name).(*vici.Message)
		if !ok {
			continue
		}
		ike, err := ikeInfo(s)
		if err != nil {
			return fmt.Errorf("IKE SA of %s: %w", name, err)
		}
		sas[name] = append(sas[name], ike)
	}
	return nil
}

// fields reads a vici message's values, remembering the first error.
type fields struct {
	m   *vici.Message
	err error
}

func (f *fields) fail(key string, err error) {
	if f.err == nil {
		f.err = fmt.Errorf("%s: %w", key, err)
	}
}

// str is a key's value, "" when it is missing. A list or section where a
// value belongs is an error.
func (f *fields) str(key string) string {
	switch v := f.m.Get(key).(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		f.fail(key, fmt.Errorf("a %T, want a value", v))
		return ""
	}
}

// list is a key's list, nil when it is missing.
func (f *fields) list(key string) []string {
	switch v := f.m.Get(key).(type) {
	case nil:
		return nil
	case []string:
		return v
	default:
		f.fail(key, fmt.Errorf("a %T, want a list", v))
		return nil
	}
}

func (f *fields) uint(key string, base, bits int) uint64 {
	v := f.str(key)
	if v == "" {
		return 0
	}
	n, err := strconv.ParseUint(v, base, bits)
	if err != nil {
		f.fail(key, err)
	}
	return n
}

func (f *fields) secs(key string) time.Duration {
	return time.Duration(f.uint(key, 10, 63)) * time.Second
}

func (f *fields) yes(key string) bool { return f.str(key) == "yes" }

// alg joins an algorithm and its key size, as swanctl's plain listing does.
func (f *fields) alg(name, size string) string {
	a := f.str(name)
	if k := f.str(size); a != "" && k != "" {
		a += "-" + k
	}
	return a
}

func (f *fields) hostPort(host, port string) netip.AddrPort {
	h := f.str(host)
	if h == "" || h == "%any" {
		return netip.AddrPort{}
	}
	a, err := netip.ParseAddr(h)
	if err != nil {
		f.fail(host, err)
	}
	return netip.AddrPortFrom(a, uint16(f.uint(port, 10, 16)))
}

func (f *fields) prefixes(key string) []netip.Prefix {
	out := []netip.Prefix{}
	for _, v := range f.list(key) {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			// A range or a protocol/port selector, which erlab does not
			// configure.
			f.fail(key, err)
			continue
		}
		out = append(out, p)
	}
	return out
}

// ikeInfo decodes an IKE SA's section of a list-sa event.
func ikeInfo(m *vici.Message) (IKEInfo, error) {
	f := &fields{m: m}
	ike := IKEInfo{
		UniqueID:     uint32(f.uint("uniqueid", 10, 32)),
		State:        f.str("state"),
		Local:        f.hostPort("local-host", "local-port"),
		Remote:       f.hostPort("remote-host", "remote-port"),
		LocalID:      f.str("local-id"),
		RemoteID:     f.str("remote-id"),
		Initiator:    f.yes("initiator"),
		InitiatorSPI: f.str("initiator-spi"),
		ResponderSPI: f.str("responder-spi"),
		NAT:          f.yes("nat-any"),
		Encryption:   f.alg("encr-alg", "encr-keysize"),
		Integrity:    f.alg("integ-alg", "integ-keysize"),
		PRF:          f.str("prf-alg"),
		DHGroup:      f.str("dh-group"),
		Established:  f.secs("established"),
		RekeyIn:      f.secs("rekey-time"),
		// A copy: the message's lists are not ours to extend.
		Tasks:    slices.Concat(f.list("tasks-active"), f.list("tasks-passive")),
		Children: []ChildInfo{},
	}
	switch children := m.Get("child-sas").(type) {
	case nil:
	case *vici.Message:
		// One section per CHILD SA, named <child name>-<unique id>.
		for _, key := range children.Keys() {
			s, ok := children.Get(key).(*vici.Message)
			if !ok {
				f.fail("child-sas", fmt.Errorf("%s is a %T, want a section", key, children.Get(key)))
				continue
			}
			child, err := childInfo(s)
			if err != nil {
				return ike, fmt.Errorf("CHILD SA %s: %w", key, err)
			}
			ike.Children = append(ike.Children, child)
		}
	default:
		f.fail("child-sas", fmt.Errorf("a %T, want a section", children))
	}
	return ike, f.err
}

// childInfo decodes a CHILD SA's section of a list-sa event. SPIs and
// if_ids come in hex, the rest in decimal.
func childInfo(m *vici.Message) (ChildInfo, error) {
	f := &fields{m: m}
	c := ChildInfo{
		UniqueID:   uint32(f.uint("uniqueid", 10, 32)),
		ReqID:      uint32(f.uint("reqid", 10, 32)),
		State:      f.str("state"),
		Mode:       f.str("mode"),
		Protocol:   f.str("protocol"),
		Encap:      f.yes("encap"),
		SPIIn:      uint32(f.uint("spi-in", 16, 32)),
		SPIOut:     uint32(f.uint("spi-out", 16, 32)),
		IfIDIn:     uint32(f.uint("if-id-in", 16, 32)),
		IfIDOut:    uint32(f.uint("if-id-out", 16, 32)),
		Encryption: f.alg("encr-alg", "encr-keysize"),
		Integrity:  f.alg("integ-alg", "integ-keysize"),
		DHGroup:    f.str("dh-group"),
		BytesIn:    f.uint("bytes-in", 10, 64),
		PacketsIn:  f.uint("packets-in", 10, 64),
		BytesOut:   f.uint("bytes-out", 10, 64),
		PacketsOut: f.uint("packets-out", 10, 64),
		Installed:  f.secs("install-time"),
		RekeyIn:    f.secs("rekey-time"),
		ExpiresIn:  f.secs("life-time"),
		LocalTS:    f.prefixes("local-ts"),
		RemoteTS:   f.prefixes("remote-ts"),
	}
	return c, f.err
}
