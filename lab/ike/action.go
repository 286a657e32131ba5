package ike

import (
	"context"
	"fmt"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/ipsec"
	"github.com/erlab-dev/erlab/lab/topo"
)

// The drill steps of IKE tunnels (NODE:TUNNEL, from that node's end): a
// rekey of the CHILD SA, and of the IKE SA, as erlab ipsec rekey does;
// strongSwan makes the new SA before it deletes the old one.
const (
	RekeyAction    = "ipsec-rekey"
	RekeyIKEAction = "ike-rekey"
)

// Keys implements topo.KeysHook: the drill actions.
func (Feature) Keys() []topo.Key {
	return []topo.Key{
		{Scope: topo.ScopeAction, Name: RekeyAction, Spec: ""},
		{Scope: topo.ScopeAction, Name: RekeyIKEAction, Spec: ""},
	}
}

// CheckAction implements feature.ActionHook: NODE:TUNNEL names an IKE
// tunnel and one of its ends.
func (Feature) CheckAction(t *topo.Topology, key string, spec topo.Spec, where string, r topo.Reporter) (any, bool) {
	at, _ := spec.Value.(string)
	tu, node, err := ipsec.FindEnd(t, at)
	if err == nil && Of(t, tu) == nil {
		err = fmt.Errorf("tunnel %s has static keys: there is nothing to rekey (give it ike: to have strongSwan key it)", tu.Name)
	}
	if err != nil {
		r.Errorf(spec.Pos, "%s: %v", where, err)
		return nil, false
	}
	return [2]string{node, tu.Name}, true
}

// Act implements feature.ActionHook: the rekey, with no probe of its own
// (the drill's flows measure it).
func (Feature) Act(ctx context.Context, l feature.Lab, key string, v any) (string, func(context.Context) error, error) {
	at := v.([2]string)
	rep, err := rekey(ctx, l, at[0], at[1], key == RekeyIKEAction, false)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("%s rekeyed in %s, SPI %#x → %#x", rep.What, rep.Took.Round(1e6), rep.SPIBefore, rep.SPIAfter), nil, nil
}
