package macsec

import (
	"context"
	"fmt"
	"strings"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/topo"
)

// RotateAction is the drill step that rotates a static-key link's SAKs
// (macsec-rotate: NODE:IFACE), as erlab macsec rotate does.
const RotateAction = "macsec-rotate"

// CheckAction implements feature.ActionHook: NODE:IFACE must be an end of
// a MACsec link with static keys (an MKA link's CAK is mka-rotate's).
func (Feature) CheckAction(t *topo.Topology, key string, spec topo.Spec, where string, r topo.Reporter) (any, bool) {
	at, _ := spec.Value.(string)
	node, iface, ok := strings.Cut(at, ":")
	var ends []string
	for _, l := range t.Links {
		if m := Of(l); m != nil && m.Static() {
			for _, e := range Ends(l) {
				ends = append(ends, e.Node+":"+e.Iface)
			}
		}
	}
	var l *topo.Link
	if ok {
		_, _, l, ok = EndOf(t, node, iface)
	}
	switch {
	case !ok:
		r.Errorf(spec.Pos, "%s: %v", where, &topo.UnknownError{Lab: t.Name, What: "MACsec link end (NODE:IFACE) with static keys", Name: at, Known: ends})
		return nil, false
	case !Of(l).Static():
		r.Errorf(spec.Pos, "%s: %s: the link is keyed by MKA: rotate its CAK with mka-rotate", where, at)
		return nil, false
	}
	return [2]string{node, iface}, true
}

// Act implements feature.ActionHook: the rotation, hitless by design.
func (Feature) Act(ctx context.Context, l feature.Lab, key string, v any) (string, func(context.Context) error, error) {
	at := v.([2]string)
	rep, err := Rotate(ctx, l, at[0], at[1])
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("AN %d → %d", rep.FromAN, rep.ToAN), nil, nil
}

// NodeStarted implements feature.RestartHook. A node started again has
// its static SAs as the deploy made them, from packet number 1, while the
// far end of each of its static-key links kept its own SAs and a replay
// window that drops those packet numbers: both ends move to fresh SAKs
// together (see resync). A far end that is itself stopped is left for its
// own start.
func (Feature) NodeStarted(ctx context.Context, l feature.Lab, node string) error {
	for _, lk := range l.Topology().Links {
		if m := Of(lk); m == nil || !m.Static() {
			continue
		}
		ends := Ends(lk)
		for k, e := range ends {
			if e.Node != node || l.Stopped(ends[1-k].Node) {
				continue
			}
			if _, err := resync(ctx, l, e.Node, e.Iface); err != nil {
				return fmt.Errorf("MACsec %s: %w", linkName(lk), err)
			}
		}
	}
	return nil
}
