package bgp

import (
	"context"
	"fmt"
	"net/netip"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/topo"
)

// The drill steps that make a router announce what it should not: a
// prefix split into many (bgp-announce: {node: N, prefix: P, length: L}:
// every /L in P), as a customer's router does that redistributes a
// deaggregated range — the leak ExpressRoute's prefix limits guard
// against — and their withdrawal (bgp-withdraw, the same map). A drill
// withdraws what it announced when it ends.
const (
	AnnounceAction = "bgp-announce"
	WithdrawAction = "bgp-withdraw"
)

// maxAnnounce bounds one announcement (a split into 2^16): ExpressRoute's
// largest prefix limit is 10,000 (Premium), and a leak of a few times that
// is enough to show any limit at work.
const maxAnnounce = 1 << 16

// AnnounceSpec is a bgp-announce or bgp-withdraw step as written.
type AnnounceSpec struct {
	Pos    topo.Pos
	Node   string        `yaml:"node"`
	Prefix topo.AddrSpec `yaml:"prefix"`
	Length int           `yaml:"length"`
}

// Announcement is a checked bgp-announce or bgp-withdraw.
type Announcement struct {
	Node     string
	Range    netip.Prefix
	Length   int
	Prefixes []netip.Prefix
}

// String is what a drill step shows of it: "ce1 10.1.0.0/16 as /28s".
func (a Announcement) String() string {
	if a.Length == a.Range.Bits() {
		return a.Node + " " + a.Range.String()
	}
	return fmt.Sprintf("%s %s as /%ds", a.Node, a.Range, a.Length)
}

func actionKeys() []topo.Key {
	return []topo.Key{
		{Scope: topo.ScopeAction, Name: AnnounceAction, Spec: (*AnnounceSpec)(nil)},
		{Scope: topo.ScopeAction, Name: WithdrawAction, Spec: (*AnnounceSpec)(nil)},
	}
}

// CheckAction implements feature.ActionHook.
func (Feature) CheckAction(t *topo.Topology, key string, spec topo.Spec, where string, r topo.Reporter) (any, bool) {
	s, _ := spec.Value.(*AnnounceSpec)
	if s == nil {
		r.Errorf(spec.Pos, "%s: give {node: ROUTER, prefix: PREFIX, length: BITS}", where)
		return nil, false
	}
	n := t.Node(s.Node)
	switch {
	case s.Node == "":
		r.Errorf(s.Pos, "%s: node: required, the router that announces", where)
		return nil, false
	case n == nil:
		var routers []string
		for _, n := range t.Nodes {
			if Of(n) != nil {
				routers = append(routers, n.Name)
			}
		}
		r.Errorf(s.Pos, "%s: %v", where, &topo.UnknownError{Lab: t.Name, What: "router", Name: s.Node, Known: routers})
		return nil, false
	case Of(n) == nil:
		r.Errorf(s.Pos, "%s: node %s runs no BGP (it has no bgp: block)", where, s.Node)
		return nil, false
	}
	p := s.Prefix.Prefix
	if !p.IsValid() {
		r.Errorf(s.Pos, "%s: prefix: required, the range to announce split", where)
		return nil, false
	}
	if p != p.Masked() {
		r.Errorf(s.Prefix.Pos, "%s: prefix %s has host bits set; did you mean %s?", where, p, p.Masked())
		return nil, false
	}
	length := s.Length
	if length == 0 {
		length = p.Bits()
	}
	if length < p.Bits() || length > p.Addr().BitLen() || length-p.Bits() > 16 {
		r.Errorf(s.Pos, "%s: length %d: from %d (the prefix itself) to %d, at most %d prefixes", where, length, p.Bits(), min(p.Addr().BitLen(), p.Bits()+16), maxAnnounce)
		return nil, false
	}
	return Announcement{Node: s.Node, Range: p, Length: length, Prefixes: Split(p, length)}, true
}

// Act implements feature.ActionHook.
func (Feature) Act(ctx context.Context, l feature.Lab, key string, v any) (string, func(context.Context) error, error) {
	a := v.(Announcement)
	what := fmt.Sprintf("%d prefixes", len(a.Prefixes))
	if len(a.Prefixes) == 1 {
		what = a.Prefixes[0].String()
	}
	if key == WithdrawAction {
		if err := Withdraw(ctx, l, a.Node, a.Prefixes); err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("%s withdrew %s", a.Node, what), nil, nil
	}
	if err := Announce(ctx, l, a.Node, a.Prefixes); err != nil {
		return "", nil, err
	}
	undo := func(ctx context.Context) error { return Withdraw(ctx, l, a.Node, a.Prefixes) }
	return fmt.Sprintf("%s announced %s", a.Node, what), undo, nil
}

// Split is every /length in p, in order.
func Split(p netip.Prefix, length int) []netip.Prefix {
	n := 1 << (length - p.Bits())
	out := make([]netip.Prefix, 0, n)
	a := p.Masked().Addr()
	step := a.BitLen() - length
	for range n {
		out = append(out, netip.PrefixFrom(a, length))
		a = addPow2(a, step)
	}
	return out
}

// addPow2 adds 2^bits to an address (wrapping at the top, which Split
// never reaches).
func addPow2(a netip.Addr, bits int) netip.Addr {
	b := a.AsSlice()
	carry := 1 << (bits % 8)
	for i := len(b) - 1 - bits/8; i >= 0 && carry > 0; i-- {
		s := int(b[i]) + carry
		b[i], carry = byte(s), s>>8
	}
	out, _ := netip.AddrFromSlice(b)
	return out
}
