package expressroute

import (
	"context"
	"fmt"
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

// Keys implements topo.KeysHook: the drill steps.
func (Feature) Keys() []topo.Key {
	return []topo.Key{
		{Scope: topo.ScopeAction, Name: AttachAction, Spec: ""},
		{Scope: topo.ScopeAction, Name: DetachAction, Spec: ""},
	}
}

// filtered is a circuit whose Microsoft peering has a route filter, and
// that peering.
func filtered(t *topo.Topology, name string) (*circuit, *peering, error) {
	m := modelOf(t)
	if m == nil {
		return nil, nil, fmt.Errorf("the lab declares no expressroute: circuits (a route filter is the model's; in a plain topology change the MSEE's match-communities)")
	}
	var known []string
	for _, c := range m.circuits {
		for _, pr := range c.peerings {
			if pr.kind != "microsoft" || pr.filter == nil {
				continue
			}
			if c.spec.Name == name {
				return c, pr, nil
			}
			known = append(known, c.spec.Name)
		}
	}
	if len(known) == 0 {
		return nil, nil, fmt.Errorf("circuit %q: no circuit of the lab has a route filter on Microsoft peering (microsoft-peering: route-filter:)", name)
	}
	return nil, nil, fmt.Errorf("circuit %q has no route filter on Microsoft peering; circuits that do: %s", name, strings.Join(known, ", "))
}

// CheckAction implements feature.ActionHook.
func (Feature) CheckAction(t *topo.Topology, _ string, spec topo.Spec, where string, r topo.Reporter) (any, bool) {
	name, _ := spec.Value.(string)
	if _, _, err := filtered(t, name); err != nil {
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
		_, pr, err := filtered(l.Topology(), name)
		if err != nil {
			return err
		}
		_, err = SetRouteFilter(ctx, l, name, pr.attached)
		return err
	}
	return did, undo, nil
}

// SetRouteFilter attaches a circuit's route filter to its Microsoft peering
// (attach true) or detaches it, on both MSEEs, and says what it did.
func SetRouteFilter(ctx context.Context, l feature.Lab, circuitName string, attach bool) (string, error) {
	c, pr, err := filtered(l.Topology(), circuitName)
	if err != nil {
		return "", err
	}
	list := []string{}
	if attach {
		list = pr.filter
	}
	for i := range 2 {
		cust, _ := hosts30(pr.subnets[i])
		if err := bgp.SetCommunityMatch(ctx, l, c.msee(i), cust, true, list); err != nil {
			return "", err
		}
	}
	if !attach {
		return fmt.Sprintf("route filter detached from circuit %s's Microsoft peering: the MSEEs send it nothing", circuitName), nil
	}
	return fmt.Sprintf("route filter attached to circuit %s's Microsoft peering: %s", circuitName, strings.Join(pr.filter, ", ")), nil
}
