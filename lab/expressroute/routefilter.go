package expressroute

import (
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/erlab-dev/erlab/lab/bgp"
	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/topo"
)

// A route filter attached to a circuit's Microsoft peering, or detached,
// while the lab runs: as a drill step (route-filter-attach: CIRCUIT,
// route-filter-detach: CIRCUIT) or erlab route-filter. Both MSEEs of the
// circuit change what they send the customer at once: the services the
// filter lists, or nothing (model: "no routes are sent until a route filter
// is attached").
const (
	AttachAction = "route-filter-attach"
	DetachAction = "route-filter-detach"
)

// Keys implements topo.KeysHook: the route filters of a plain topology
// (what the model writes for each Microsoft peering's filter), and the
// drill steps.
func (Feature) Keys() []topo.Key {
	return []topo.Key{
		{Scope: topo.ScopeTopology, Name: FiltersKey, Spec: []FilterSpec(nil)},
		{Scope: topo.ScopeAction, Name: AttachAction, Spec: ""},
		{Scope: topo.ScopeAction, Name: DetachAction, Spec: ""},
	}
}

// FiltersKey is the key under topology: where the route filters are.
const FiltersKey = "route-filters"

// FilterSpec is a route filter as a plain topology writes it: the
// circuit's name, the communities it passes, whether it is attached at
// deploy, and the MSEE sessions it is on (NODE:NEIGHBOUR, the MSEE and the
// customer's address), whose export policy matches communities.
type FilterSpec struct {
	Pos         topo.Pos
	Circuit     string   `yaml:"circuit"`
	Communities []string `yaml:"communities"`
	Attached    bool     `yaml:"attached"`
	Sessions    []string `yaml:"sessions"`
}

// Filter is a checked route filter.
type Filter struct {
	Circuit     string
	Communities []string
	Attached    bool
	Sessions    []Session
}

// Session is an MSEE's session with a customer.
type Session struct {
	Node     string
	Neighbor netip.Addr
}

const filtersExt = Name + "." + FiltersKey

// Filters returns the topology's route filters.
func Filters(t *topo.Topology) []*Filter {
	if t == nil {
		return nil
	}
	f, _ := t.Ext[filtersExt].([]*Filter)
	return f
}

// CheckTopology implements topo.TopologyHook: each route filter's
// communities, and its sessions: an MSEE's neighbours whose export policy
// matches communities.
func (Feature) CheckTopology(t *topo.Topology, r topo.Reporter) {
	specs, _, ok := topo.SpecOf[[]FilterSpec](t.Specs, FiltersKey)
	if !ok {
		return
	}
	var out []*Filter
	seen := map[string]bool{}
	for i, fs := range specs {
		where := fmt.Sprintf("%s[%d]", FiltersKey, i)
		f := &Filter{Circuit: fs.Circuit, Communities: fs.Communities, Attached: fs.Attached}
		ok := true
		switch {
		case fs.Circuit == "":
			r.Errorf(fs.Pos, "%s: circuit: required (the drill steps and erlab route-filter name it)", where)
			ok = false
		case seen[fs.Circuit]:
			r.Errorf(fs.Pos, "%s: circuit %q has a route filter already", where, fs.Circuit)
			ok = false
		}
		seen[fs.Circuit] = true
		for _, c := range fs.Communities {
			if !filterCommunity(c) {
				r.Errorf(fs.Pos, "%s: community %q: a Microsoft peering community (12076:5000-5999 for services, 12076:51000-51999 for regions)", where, c)
				ok = false
			}
		}
		if len(fs.Sessions) == 0 {
			r.Errorf(fs.Pos, "%s: sessions: required, the MSEE sessions it is on (NODE:NEIGHBOUR)", where)
			ok = false
		}
		for _, at := range fs.Sessions {
			node, addr, _ := strings.Cut(at, ":")
			a, err := netip.ParseAddr(addr)
			n := t.Node(node)
			var nb *bgp.Neighbor
			if n != nil && err == nil {
				if c := bgp.Of(n); c != nil {
					for k := range c.Neighbors {
						if c.Neighbors[k].Address == a {
							nb = &c.Neighbors[k]
						}
					}
				}
			}
			switch {
			case nb == nil:
				r.Errorf(fs.Pos, "%s: session %q: no router of the lab has that neighbour (NODE:NEIGHBOUR-ADDRESS)", where, at)
				ok = false
			case nb.Export == nil || !nb.Export.ByCommunity:
				r.Errorf(fs.Pos, "%s: session %q: its export policy matches no communities (export: {match-communities: [...]})", where, at)
				ok = false
			default:
				f.Sessions = append(f.Sessions, Session{Node: node, Neighbor: a})
			}
		}
		if ok {
			out = append(out, f)
		}
	}
	t.Ext[filtersExt] = out
}

// filterCommunity says whether a route filter may list a community: a
// service's (12076:5xxx) or a region's on Microsoft peering (12076:51xxx).
// A private peering's regional community (50xxx) would let the virtual
// networks' routes out over Microsoft peering.
func filterCommunity(c string) bool {
	asn, v, found := strings.Cut(c, ":")
	n, err := strconv.Atoi(v)
	return found && asn == "12076" && err == nil && (n >= 5000 && n <= 5999 || n >= 51000 && n <= 51999)
}

// filterOf finds a circuit's route filter.
func filterOf(t *topo.Topology, name string) (*Filter, error) {
	var known []string
	for _, f := range Filters(t) {
		if f.Circuit == name {
			return f, nil
		}
		known = append(known, f.Circuit)
	}
	if len(known) == 0 {
		return nil, fmt.Errorf("circuit %q: the lab has no route filter (microsoft-peering: route-filter: in expressroute:, or topology.route-filters)", name)
	}
	return nil, fmt.Errorf("circuit %q has no route filter; circuits that do: %s", name, strings.Join(known, ", "))
}

// CheckAction implements feature.ActionHook.
func (Feature) CheckAction(t *topo.Topology, _ string, spec topo.Spec, where string, r topo.Reporter) (any, bool) {
	name, _ := spec.Value.(string)
	if _, err := filterOf(t, name); err != nil {
		r.Errorf(spec.Pos, "%s: %v", where, err)
		return nil, false
	}
	return name, true
}

// Act implements feature.ActionHook: the filter set, and put back as the
// topology declares it when the drill ends.
func (Feature) Act(ctx context.Context, l feature.Lab, key string, v any) (string, func(context.Context) error, error) {
	name := v.(string)
	did, err := SetRouteFilter(ctx, l, name, key == AttachAction)
	if err != nil {
		return "", nil, err
	}
	undo := func(ctx context.Context) error {
		f, err := filterOf(l.Topology(), name)
		if err != nil {
			return err
		}
		_, err = SetRouteFilter(ctx, l, name, f.Attached)
		return err
	}
	return did, undo, nil
}

// SetRouteFilter attaches a circuit's route filter to its Microsoft peering
// (attach true) or detaches it, on both MSEEs, and says what it did.
func SetRouteFilter(ctx context.Context, l feature.Lab, circuitName string, attach bool) (string, error) {
	f, err := filterOf(l.Topology(), circuitName)
	if err != nil {
		return "", err
	}
	list := []string{}
	if attach {
		list = f.Communities
	}
	for _, s := range f.Sessions {
		if err := bgp.SetCommunityMatch(ctx, l, s.Node, s.Neighbor, true, list); err != nil {
			return "", err
		}
	}
	what := map[bool]string{true: "route-filter-attach", false: "route-filter-detach"}[attach]
	l.Record(feature.Event{Kind: "action", Object: "circuit " + circuitName, State: what, Detail: strings.Join(list, ", ")})
	if !attach {
		return fmt.Sprintf("route filter detached from circuit %s's Microsoft peering: the MSEEs send it nothing", circuitName), nil
	}
	return fmt.Sprintf("route filter attached to circuit %s's Microsoft peering: %s", circuitName, strings.Join(f.Communities, ", ")), nil
}
