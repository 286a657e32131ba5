package mka

import (
	"context"
	"fmt"
	"strings"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/macsec"
	"github.com/erlab-dev/erlab/lab/topo"
)

// The drill steps of MKA links (NODE:IFACE, an end): a rotation to a
// fresh random CAK, one end then the other at once, as erlab macsec
// rotate does; and a mismatch, a fresh CAK at that end only, which must
// take the link down (nothing passes, and nothing in clear) until the
// drill ends and gives the end back the key the other holds.
const (
	RotateAction   = "mka-rotate"
	MismatchAction = "mka-mismatch"
)

// Keys implements topo.KeysHook: the drill actions.
func (Feature) Keys() []topo.Key {
	return []topo.Key{
		{Scope: topo.ScopeAction, Name: RotateAction, Spec: ""},
		{Scope: topo.ScopeAction, Name: MismatchAction, Spec: ""},
	}
}

// CheckAction implements feature.ActionHook: NODE:IFACE must be an end of
// an MKA link.
func (Feature) CheckAction(t *topo.Topology, key string, spec topo.Spec, where string, r topo.Reporter) (any, bool) {
	at, _ := spec.Value.(string)
	node, iface, ok := strings.Cut(at, ":")
	var ends []string
	for _, l := range t.Links {
		if Keyed(l) {
			for _, e := range macsec.Ends(l) {
				ends = append(ends, e.Node+":"+e.Iface)
			}
		}
	}
	if ok {
		if _, _, l, found := macsec.EndOf(t, node, iface); found && Keyed(l) {
			return [2]string{node, iface}, true
		}
	}
	r.Errorf(spec.Pos, "%s: %v", where, &topo.UnknownError{Lab: t.Name, What: "MKA link end (NODE:IFACE)", Name: at, Known: ends})
	return nil, false
}

// Act implements feature.ActionHook.
func (Feature) Act(ctx context.Context, l feature.Lab, key string, v any) (string, func(context.Context) error, error) {
	at := v.([2]string)
	if key == RotateAction {
		rep, err := Rotate(ctx, l, at[0], at[1], Rotation{NoProbe: true})
		if err != nil {
			return "", nil, err
		}
		return fmt.Sprintf("secured again in %s", rep.Secured.Round(1e6)), nil, nil
	}
	// The key the other end holds now, to give this end back at the end.
	_, peer, _, _ := macsec.EndOf(l.Topology(), at[0], at[1])
	cak, ckn, err := currentKeys(l.NodeDir(peer.Node), peer.Lower)
	if err != nil {
		return "", nil, err
	}
	rep, err := Rotate(ctx, l, at[0], at[1], Rotation{OneSide: true, NoProbe: true})
	if err != nil {
		return "", nil, err
	}
	back := func(ctx context.Context) error {
		_, err := Rotate(ctx, l, at[0], at[1], Rotation{CAK: cak, CKN: ckn, OneSide: true, NoProbe: true})
		return err
	}
	return fmt.Sprintf("%s unsecured after %s", at[0]+":"+at[1], rep.Down.Round(1e6)), back, nil
}
