package bgp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"testing"

	api "github.com/osrg/gobgp/v4/api"
)

// adjRIB lists what a speaker holds of a neighbour's (adj-in) or for it
// (adj-out), with "filtered" after each prefix its policy rejects, sorted.
func (sp *testSpeaker) adjRIB(t *testing.T, table api.TableType, nbr string) []string {
	t.Helper()
	stream, err := sp.client.ListPath(context.Background(), &api.ListPathRequest{TableType: table, Name: nbr, Family: familyV4, EnableFiltered: true})
	if err != nil {
		t.Fatalf("speaker %s: list %s of %s: %v", sp.cfg.RouterID, table, nbr, err)
	}
	var out []string
	for {
		r, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("speaker %s: list %s of %s: %v", sp.cfg.RouterID, table, nbr, err)
		}
		for _, p := range r.GetDestination().GetPaths() {
			line := r.GetDestination().GetPrefix()
			if p.GetFiltered() {
				line += " filtered"
			}
			out = append(out, line)
		}
	}
	slices.Sort(out)
	return out
}

// TestPolicyImport checks an import policy as GoBGP applies it: s1's
// routes pass r's prefix filter (10.0.0.0/8 le 24, less what its deny: names) or are dropped, and the
// ones that pass carry the local-pref, MED, prepend (of s1's AS) and
// communities; s2's, whose session has no policy, pass untouched.
func TestPolicyImport(t *testing.T) {
	lp, med := uint32(150), uint32(50)
	s1 := neighbor("127.0.0.2", 65002, false)
	s1.Import = &Policy{
		Prefixes:  []PrefixMatch{{Prefix: netip.MustParsePrefix("10.0.0.0/8"), LE: 24}},
		Deny:      []PrefixMatch{{Prefix: netip.MustParsePrefix("10.3.0.0/16"), LE: 32}},
		LocalPref: &lp, MED: &med, Prepend: 2, Communities: []string{"65001:100", "12076:50004"},
	}
	sp := startSpeakers(t,
		Config{ASN: 65001, RouterID: netip.MustParseAddr("127.0.0.1"), Neighbors: []Neighbor{s1, neighbor("127.0.0.3", 65003, false)}},
		Config{ASN: 65002, RouterID: netip.MustParseAddr("127.0.0.2"), Neighbors: []Neighbor{neighbor("127.0.0.1", 65001, true)}},
		Config{ASN: 65003, RouterID: netip.MustParseAddr("127.0.0.3"), Neighbors: []Neighbor{neighbor("127.0.0.1", 65001, true)}},
	)
	r := sp[0]
	sp[1].announce(t, "10.0.0.0/8", "10.1.0.0/24", "10.2.0.0/25", "10.3.1.0/24", "192.168.1.0/24")
	sp[2].announce(t, "192.168.2.0/24")

	// All of s1's routes have arrived, and the filter's verdict on each.
	waitFor(t, routeWait, "r has s1's routes, the ones outside the filter rejected", func() string {
		return diff([]string{"10.0.0.0/8", "10.1.0.0/24", "10.2.0.0/25 filtered", "10.3.1.0/24 filtered", "192.168.1.0/24 filtered"}, r.adjRIB(t, api.TableType_TABLE_TYPE_ADJ_IN, "127.0.0.2"))
	})
	waitFor(t, routeWait, "r has s2's route", func() string { return diff(1, len(r.paths(t, "192.168.2.0/24"))) })
	accepted := PathInfo{NextHop: netip.MustParseAddr("127.0.0.2"), ASPath: []uint32{65002, 65002, 65002}, LocalPref: 150, MED: 50,
		Communities: []string{"65001:100", "12076:50004"}, Best: true, Neighbor: "127.0.0.2"}
	for _, tc := range []struct {
		prefix string
		want   []PathInfo
	}{
		{"10.0.0.0/8", []PathInfo{accepted}},  // the filter's own prefix
		{"10.1.0.0/24", []PathInfo{accepted}}, // longer, up to le
		{"10.2.0.0/25", nil},                  // longer than le
		{"10.3.1.0/24", nil},                  // in the filter, but denied first
		{"192.168.1.0/24", nil},               // outside
		{"192.168.2.0/24", []PathInfo{{NextHop: netip.MustParseAddr("127.0.0.3"), ASPath: []uint32{65003}, LocalPref: 100, Best: true, Neighbor: "127.0.0.3"}}},
	} {
		got := r.paths(t, tc.prefix)
		for i := range tc.want {
			tc.want[i].Prefix = netip.MustParsePrefix(tc.prefix)
		}
		if d := diff(tc.want, got); d != "" {
			t.Errorf("r's RIB for %s %s", tc.prefix, d)
		}
	}
}

// TestPolicyExport checks export policies as GoBGP applies them, each to
// its own neighbour of a (AS 65001). c (eBGP, AS 65003) sends 10.3.0.0/24
// and 10.4.0.0/24. b (iBGP) is sent a's routes with next-hop-self and
// through a prefix filter; d (iBGP, no policy) gets every route with c's
// next hop kept, as iBGP does. c is sent a's own network prepended twice,
// with a MED and a community; c's session has an import policy too (a
// community on what a learns from c), so one neighbour serves both
// directions.
func TestPolicyExport(t *testing.T) {
	med := uint32(70)
	b := neighbor("127.0.0.2", 65001, false)
	b.Export = &Policy{NextHopSelf: true, Prefixes: []PrefixMatch{{Prefix: netip.MustParsePrefix("10.3.0.0/24")}, {Prefix: netip.MustParsePrefix("10.8.0.0/24")}}}
	c := neighbor("127.0.0.3", 65003, false)
	c.Export = &Policy{Prepend: 2, MED: &med, Communities: []string{"65001:300"}}
	c.Import = &Policy{Communities: []string{"65001:3"}} // both directions on one session
	sp := startSpeakers(t,
		Config{ASN: 65001, RouterID: netip.MustParseAddr("127.0.0.1"), Networks: []netip.Prefix{netip.MustParsePrefix("10.8.0.0/24")},
			Neighbors: []Neighbor{b, c, neighbor("127.0.0.4", 65001, false)}},
		Config{ASN: 65001, RouterID: netip.MustParseAddr("127.0.0.2"), Neighbors: []Neighbor{neighbor("127.0.0.1", 65001, true)}},
		Config{ASN: 65003, RouterID: netip.MustParseAddr("127.0.0.3"), Neighbors: []Neighbor{neighbor("127.0.0.1", 65001, true)}},
		Config{ASN: 65001, RouterID: netip.MustParseAddr("127.0.0.4"), Neighbors: []Neighbor{neighbor("127.0.0.1", 65001, true)}},
	)
	a, bs, cs, ds := sp[0], sp[1], sp[2], sp[3]
	// 10.4.0.0/24 first: a sends b its updates in order, so once b has
	// 10.3.0.0/24 it would already have 10.4.0.0/24, had a sent it.
	cs.announce(t, "10.4.0.0/24")
	waitFor(t, routeWait, "a has c's 10.4.0.0/24", func() string { return diff(1, len(a.paths(t, "10.4.0.0/24"))) })
	cs.announce(t, "10.3.0.0/24")
	waitFor(t, routeWait, "d has every route of a", func() string {
		return diff([]string{"10.3.0.0/24", "10.4.0.0/24", "10.8.0.0/24"}, ds.adjRIB(t, api.TableType_TABLE_TYPE_ADJ_IN, "127.0.0.1"))
	})
	waitFor(t, routeWait, "b has 10.3.0.0/24 and 10.8.0.0/24", func() string {
		return diff([]string{"10.3.0.0/24", "10.8.0.0/24"}, bs.adjRIB(t, api.TableType_TABLE_TYPE_ADJ_IN, "127.0.0.1"))
	})
	waitFor(t, routeWait, "c has a's network", func() string { return diff(1, len(cs.paths(t, "10.8.0.0/24"))) })
	if d := diff([]string{"10.3.0.0/24", "10.4.0.0/24 filtered", "10.8.0.0/24"}, a.adjRIB(t, api.TableType_TABLE_TYPE_ADJ_OUT, "127.0.0.2")); d != "" {
		t.Errorf("a's adj-out for b %s", d)
	}

	for _, tc := range []struct {
		at     *testSpeaker
		prefix string
		want   []PathInfo
	}{
		// next-hop-self: b routes c's prefix through a.
		{bs, "10.3.0.0/24", []PathInfo{{NextHop: netip.MustParseAddr("127.0.0.1"), ASPath: []uint32{65003}, LocalPref: 100, Communities: []string{"65001:3"}, Best: true, Neighbor: "127.0.0.1"}}},
		{bs, "10.4.0.0/24", nil},
		{bs, "10.8.0.0/24", []PathInfo{{NextHop: netip.MustParseAddr("127.0.0.1"), LocalPref: 100, Best: true, Neighbor: "127.0.0.1"}}},
		// Without it, d is given c's next hop.
		{ds, "10.3.0.0/24", []PathInfo{{NextHop: netip.MustParseAddr("127.0.0.3"), ASPath: []uint32{65003}, LocalPref: 100, Communities: []string{"65001:3"}, Best: true, Neighbor: "127.0.0.1"}}},
		// c's export: a's AS prepended twice, beside the once of eBGP.
		{cs, "10.8.0.0/24", []PathInfo{{NextHop: netip.MustParseAddr("127.0.0.1"), ASPath: []uint32{65001, 65001, 65001}, LocalPref: 100, MED: 70,
			Communities: []string{"65001:300"}, Best: true, Neighbor: "127.0.0.1"}}},
	} {
		got := tc.at.paths(t, tc.prefix)
		for i := range tc.want {
			tc.want[i].Prefix = netip.MustParsePrefix(tc.prefix)
		}
		if d := diff(tc.want, got); d != "" {
			t.Errorf("%s's RIB for %s %s", tc.at.cfg.RouterID, tc.prefix, d)
		}
	}
}

// TestPolicyCommunityMatch is an ExpressRoute route filter as the MSEE
// applies it: m (AS 12076) originates service prefixes tagged with
// Microsoft's service communities and sends c only what carries a
// community of c's filter — nothing while the filter is empty, then what
// each filter set while the speakers run lets through. What m passes on to
// c of s's routes (AS 65010, private) loses s's AS: remove-private-as.
func TestPolicyCommunityMatch(t *testing.T) {
	cust := neighbor("127.0.0.2", 65020, false)
	cust.Export = &Policy{ByCommunity: true}
	cust.RemovePrivateAS = true
	exo, spo, plain := netip.MustParsePrefix("10.96.0.0/13"), netip.MustParsePrefix("10.107.136.0/22"), netip.MustParsePrefix("10.9.0.0/24")
	site := netip.MustParsePrefix("198.51.100.0/24")
	sp := startSpeakers(t,
		Config{ASN: 12076, RouterID: netip.MustParseAddr("127.0.0.1"), Networks: []netip.Prefix{exo, spo, plain},
			Tags:      map[netip.Prefix][]string{exo: {"12076:5010"}, spo: {"12076:5020", "12076:51004"}},
			Neighbors: []Neighbor{cust, neighbor("127.0.0.3", 65010, false)}},
		Config{ASN: 65020, RouterID: netip.MustParseAddr("127.0.0.2"), Neighbors: []Neighbor{neighbor("127.0.0.1", 12076, true)}},
		Config{ASN: 65010, RouterID: netip.MustParseAddr("127.0.0.3"), Networks: []netip.Prefix{site}, Tags: map[netip.Prefix][]string{site: {"65010:1"}},
			Neighbors: []Neighbor{neighbor("127.0.0.1", 12076, true)}},
	)
	m, c := sp[0], sp[1]
	waitFor(t, routeWait, "m has s's prefix", func() string { return diff(1, len(m.paths(t, site.String()))) })
	// An empty filter: m has everything for c and sends it nothing.
	if d := diff([]string{"10.107.136.0/22 filtered", "10.9.0.0/24 filtered", "10.96.0.0/13 filtered", "198.51.100.0/24 filtered"},
		m.adjRIB(t, api.TableType_TABLE_TYPE_ADJ_OUT, "127.0.0.2")); d != "" {
		t.Errorf("m's adj-out for c with an empty filter %s", d)
	}
	in := func() []string { return c.adjRIB(t, api.TableType_TABLE_TYPE_ADJ_IN, "127.0.0.1") }
	if got := in(); len(got) != 0 {
		t.Errorf("c got %v through an empty filter", got)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		old, set []string
		want     []string
	}{
		{nil, []string{"12076:5010"}, []string{"10.96.0.0/13"}},
		{[]string{"12076:5010"}, []string{"12076:5010", "12076:51004"}, []string{"10.107.136.0/22", "10.96.0.0/13"}},
		{[]string{"12076:5010", "12076:51004"}, nil, nil},
		{nil, []string{"65010:1"}, []string{"198.51.100.0/24"}},
	} {
		if err := replaceCommunityMatch(ctx, m.client, "export-nbr0", netip.MustParseAddr("127.0.0.2"), api.ResetPeerRequest_DIRECTION_OUT, tc.old, tc.set); err != nil {
			t.Fatal(err)
		}
		waitFor(t, routeWait, fmt.Sprintf("c has what filter %v passes", tc.set), func() string { return diff(tc.want, in()) })
	}
	// remove-private-as: s's AS is gone from what c got; m's own is there.
	got := c.paths(t, site.String())
	if len(got) != 1 || !slices.Equal(got[0].ASPath, []uint32{12076}) {
		t.Errorf("c's path to s's prefix: %+v; want AS path 12076 alone (65010 removed)", got)
	}
}

// TestFamilies: a session restricted to IPv4 carries no IPv6 route (a
// dual-stack ExpressRoute peering runs one session per family); one with
// both carries both.
func TestFamilies(t *testing.T) {
	only4 := neighbor("127.0.0.2", 65002, false)
	only4.IPv4Only = true
	sp := startSpeakers(t,
		Config{ASN: 65001, RouterID: netip.MustParseAddr("127.0.0.1"), Neighbors: []Neighbor{only4, neighbor("127.0.0.3", 65003, false)}},
		Config{ASN: 65002, RouterID: netip.MustParseAddr("127.0.0.2"), Neighbors: []Neighbor{neighbor("127.0.0.1", 65001, true)}},
		Config{ASN: 65003, RouterID: netip.MustParseAddr("127.0.0.3"), Neighbors: []Neighbor{neighbor("127.0.0.1", 65001, true)}},
	)
	r, s2, s3 := sp[0], sp[1], sp[2]
	s2.announce(t, "10.2.0.0/24", "2001:db8:2::/48")
	s3.announce(t, "10.3.0.0/24", "2001:db8:3::/48")
	waitFor(t, routeWait, "r has both of s3's routes and s2's IPv4 one", func() string {
		return diff([]int{1, 1, 1}, []int{len(r.paths(t, "10.2.0.0/24")), len(r.paths(t, "10.3.0.0/24")), len(r.paths(t, "2001:db8:3::/48"))})
	})
	if got := r.paths(t, "2001:db8:2::/48"); len(got) != 0 {
		t.Errorf("an IPv4-only session carried an IPv6 route: %+v", got)
	}
}
