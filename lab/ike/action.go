package ike

import (
	"context"
	"fmt"
	"syscall"

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
	// KillAction kills a node's charon with SIGKILL (ike-kill: NODE), as a
	// crash: no IKE message leaves, the SAs it installed stay in the
	// kernel, the peer's DPD finds it gone, and its supervisor starts a
	// new charon a second later, which loads the connections again and
	// initiates where this end is the initiator.
	KillAction = "ike-kill"
)

// Keys implements topo.KeysHook: the drill actions.
func (Feature) Keys() []topo.Key {
	return []topo.Key{
		{Scope: topo.ScopeAction, Name: RekeyAction, Spec: ""},
		{Scope: topo.ScopeAction, Name: RekeyIKEAction, Spec: ""},
		{Scope: topo.ScopeAction, Name: KillAction, Spec: ""},
	}
}

// CheckAction implements feature.ActionHook: NODE:TUNNEL names an IKE
// tunnel and one of its ends.
func (Feature) CheckAction(t *topo.Topology, key string, spec topo.Spec, where string, r topo.Reporter) (any, bool) {
	at, _ := spec.Value.(string)
	if key == KillAction {
		var nodes []string
		for _, n := range t.Nodes {
			if len(NodeConns(t, n.Name, "", "").Conns) > 0 {
				if n.Name == at {
					return at, true
				}
				nodes = append(nodes, n.Name)
			}
		}
		r.Errorf(spec.Pos, "%s: %v", where, &topo.UnknownError{Lab: t.Name, What: "node running charon (an end of an IKE tunnel)", Name: at, Known: nodes})
		return nil, false
	}
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
	if key == KillAction {
		pid, err := KillCharon(l, v.(string))
		if err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("charon (PID %d) killed", pid), nil, nil
	}
	at := v.([2]string)
	rep, err := rekey(ctx, l, at[0], at[1], key == RekeyIKEAction, false)
	if err != nil {
		return "", nil, err
	}
	// The SPIs are the CHILD SA's, as erlab ipsec rekey says: an IKE SA
	// rekeyed keeps it.
	return fmt.Sprintf("%s rekeyed in %s; CHILD SA out SPI %#x → %#x", rep.What, rep.Took.Round(1e6), rep.SPIBefore, rep.SPIAfter), nil, nil
}

// KillCharon kills a node's charon with SIGKILL, once it is sure the PID
// is the node's charon; its supervisor starts another. It returns the PID
// it killed.
func KillCharon(l feature.Lab, node string) (int, error) {
	in, ok := conns(l, node)
	if !ok {
		return 0, fmt.Errorf("node %s runs no charon (is the lab deployed?)", node)
	}
	f := filesOf(in)
	pid, err := readPID(f.charonPID)
	if err != nil || !isOurCharon(pid, f) || !alive(pid) {
		return 0, fmt.Errorf("node %s: its charon is not running (restarting?)", node)
	}
	return pid, syscall.Kill(pid, syscall.SIGKILL)
}
