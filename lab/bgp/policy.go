package bgp

import (
	"context"
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// applyPolicies turns each neighbour's import and export policies into
// GoBGP's global policies. GoBGP applies per-peer policy only to route
// server clients, so every statement starts by matching its neighbour; a
// neighbour with a prefix filter gets a last statement rejecting the rest.
func applyPolicies(ctx context.Context, s *server.BgpServer, b Config) error {
	dirs := []struct {
		name string
		dir  api.PolicyDirection
		get  func(Neighbor) *Policy
	}{
		{"import", api.PolicyDirection_POLICY_DIRECTION_IMPORT, func(n Neighbor) *Policy { return n.Import }},
		{"export", api.PolicyDirection_POLICY_DIRECTION_EXPORT, func(n Neighbor) *Policy { return n.Export }},
	}
	for _, d := range dirs {
		var stmts []*api.Statement
		for i, n := range b.Neighbors {
			p := d.get(n)
			if p == nil {
				continue
			}
			nset := fmt.Sprintf("nbr%d", i)
			if err := addNeighborSet(ctx, s, nset, n.Address); err != nil {
				return err
			}
			st, err := statements(ctx, s, fmt.Sprintf("%s-nbr%d", d.name, i), nset, p, d.dir, b.ASN)
			if err != nil {
				return err
			}
			stmts = append(stmts, st...)
		}
		if len(stmts) == 0 {
			continue
		}
		name := "erlab-" + d.name
		if err := s.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{Name: name, Statements: stmts}}); err != nil {
			return fmt.Errorf("add %s policy: %w", d.name, err)
		}
		if err := s.AddPolicyAssignment(ctx, &api.AddPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
			Name: "global", Direction: d.dir, Policies: []*api.Policy{{Name: name}}, DefaultAction: api.RouteAction_ROUTE_ACTION_ACCEPT,
		}}); err != nil {
			return fmt.Errorf("assign %s policy: %w", d.name, err)
		}
	}
	return nil
}

func addNeighborSet(ctx context.Context, s *server.BgpServer, name string, a netip.Addr) error {
	err := s.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
		DefinedType: api.DefinedType_DEFINED_TYPE_NEIGHBOR, Name: name, List: []string{netip.PrefixFrom(a, a.BitLen()).String()},
	}})
	if err != nil {
		return fmt.Errorf("neighbour set %s: %w", name, err)
	}
	return nil
}

func statements(ctx context.Context, s *server.BgpServer, name, nset string, p *Policy, dir api.PolicyDirection, asn uint32) ([]*api.Statement, error) {
	actions := &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_ACCEPT}
	if p.LocalPref != nil {
		actions.LocalPref = &api.LocalPrefAction{Value: *p.LocalPref}
	}
	if p.MED != nil {
		actions.Med = &api.MedAction{Type: api.MedAction_TYPE_REPLACE, Value: int64(*p.MED)}
	}
	if p.Prepend > 0 {
		pre := &api.AsPrependAction{Asn: asn, Repeat: uint32(p.Prepend)}
		if dir == api.PolicyDirection_POLICY_DIRECTION_IMPORT {
			pre = &api.AsPrependAction{UseLeftMost: true, Repeat: uint32(p.Prepend)} // the neighbour's AS
		}
		actions.AsPrepend = pre
	}
	if p.NextHopSelf {
		actions.Nexthop = &api.NexthopAction{Self: true}
	}
	if len(p.Communities) > 0 {
		actions.Community = &api.CommunityAction{Type: api.CommunityAction_TYPE_ADD, Communities: p.Communities}
	}
	match := &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: nset}
	if p.Nothing {
		return []*api.Statement{{Name: name, Conditions: &api.Conditions{NeighborSet: match}, Actions: &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_REJECT}}}, nil
	}
	// A community filter is a set of its own, which may be empty (nothing
	// passes) and changes while the lab runs (SetCommunityMatch).
	var cset *api.MatchSet
	if p.ByCommunity {
		cname := communitySetName(name)
		if err := s.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
			DefinedType: api.DefinedType_DEFINED_TYPE_COMMUNITY, Name: cname, List: p.MatchCommunities,
		}}); err != nil {
			return nil, fmt.Errorf("community set %s: %w", cname, err)
		}
		cset = &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: cname}
	}
	reject := &api.Actions{RouteAction: api.RouteAction_ROUTE_ACTION_REJECT}
	rest := &api.Statement{Name: name + "-rest", Conditions: &api.Conditions{NeighborSet: match}, Actions: reject}
	// What deny: names is rejected first.
	denied, err := prefixSets(ctx, s, name+"-deny", p.Deny)
	if err != nil {
		return nil, err
	}
	var out []*api.Statement
	for _, set := range denied {
		out = append(out, &api.Statement{Name: set.Name, Conditions: &api.Conditions{NeighborSet: match, PrefixSet: set}, Actions: reject})
	}
	if len(p.Prefixes) == 0 {
		out = append(out, &api.Statement{Name: name, Conditions: &api.Conditions{NeighborSet: match, CommunitySet: cset}, Actions: actions})
		if cset != nil {
			out = append(out, rest)
		}
		return out, nil
	}
	permitted, err := prefixSets(ctx, s, name, p.Prefixes)
	if err != nil {
		return nil, err
	}
	for _, set := range permitted {
		out = append(out, &api.Statement{Name: set.Name, Conditions: &api.Conditions{NeighborSet: match, PrefixSet: set, CommunitySet: cset}, Actions: actions})
	}
	return append(out, rest), nil
}

// prefixSets defines the prefix sets of a filter, one per family (a set
// holds one), named NAME-v4 and NAME-v6, and returns them as conditions.
func prefixSets(ctx context.Context, s *server.BgpServer, name string, ms []PrefixMatch) ([]*api.MatchSet, error) {
	byFamily := map[bool][]*api.Prefix{}
	for _, m := range ms {
		lo, hi := m.Prefix.Bits(), m.Prefix.Bits()
		switch {
		case m.GE != 0 && m.LE != 0:
			lo, hi = m.GE, m.LE
		case m.GE != 0:
			lo, hi = m.GE, m.Prefix.Addr().BitLen()
		case m.LE != 0:
			hi = m.LE
		}
		v6 := is6(m.Prefix.Addr())
		byFamily[v6] = append(byFamily[v6], &api.Prefix{IpPrefix: m.Prefix.String(), MaskLengthMin: uint32(lo), MaskLengthMax: uint32(hi)})
	}
	var out []*api.MatchSet
	for _, v6 := range []bool{false, true} {
		prefixes := byFamily[v6]
		if len(prefixes) == 0 {
			continue
		}
		pset := fmt.Sprintf("%s-v%d", name, map[bool]int{false: 4, true: 6}[v6])
		if err := s.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: &api.DefinedSet{
			DefinedType: api.DefinedType_DEFINED_TYPE_PREFIX, Name: pset, Prefixes: prefixes,
		}}); err != nil {
			return nil, fmt.Errorf("prefix set %s: %w", pset, err)
		}
		out = append(out, &api.MatchSet{Type: api.MatchSet_TYPE_ANY, Name: pset})
	}
	return out, nil
}

// communitySetName names the community filter of a neighbour's policy:
// "export-nbr3" → "export-nbr3-comm".
func communitySetName(policy string) string { return policy + "-comm" }
