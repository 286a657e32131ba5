package ipsec

import (
	"context"
	"crypto/rand"
	"fmt"
	"strings"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/ipsec/xfrm"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/topo"
)

// BreakAction is the drill step that breaks a static-key tunnel from one
// end (ipsec-break: NODE:TUNNEL): that end's outbound SA gets a wrong key,
// as a botched rekey leaves it, so the other end drops everything it sends
// as integrity failures while routes, interfaces and the other direction
// stay as they were. Only a hold timer of what runs over the tunnel
// notices. The drill puts both ends' SAs back when it ends.
const BreakAction = "ipsec-break"

// CheckAction implements feature.ActionHook: NODE:TUNNEL names a tunnel
// with static keys and one of its ends.
func (Feature) CheckAction(t *topo.Topology, key string, spec topo.Spec, where string, r topo.Reporter) (any, bool) {
	at, _ := spec.Value.(string)
	tu, node, err := FindEnd(t, at)
	if err != nil {
		r.Errorf(spec.Pos, "%s: %v", where, err)
		return nil, false
	}
	if !tu.Static() {
		r.Errorf(spec.Pos, "%s: tunnel %s is keyed by IKE, whose SAs are strongSwan's: break a static-key tunnel", where, tu.Name)
		return nil, false
	}
	return [2]string{node, tu.Name}, true
}

// Act implements feature.ActionHook.
func (Feature) Act(ctx context.Context, l feature.Lab, key string, v any) (string, func(context.Context) error, error) {
	at := v.([2]string)
	tu := Find(l.Topology(), at[1])
	broken := tu.XFRM(at[0])
	broken.KeyOut = xfrm.Key{Enc: garbage(len(broken.KeyOut.Enc)), Auth: garbage(len(broken.KeyOut.Auth))}
	if err := apply(l, at[0], broken); err != nil {
		return "", nil, err
	}
	// Both ends again: a replaced SA starts its sequence numbers over, so
	// the peer's must start over too or its replay window drops them.
	back := func(context.Context) error {
		for _, end := range []string{tu.A.Node, tu.B.Node} {
			if err := apply(l, end, tu.XFRM(end)); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Sprintf("%s's outbound SA (SPI %#x) keyed wrong", at[0], broken.SPIOut), back, nil
}

// FindEnd resolves NODE:TUNNEL, a tunnel and one of its ends, as the
// tunnel actions of drills name them.
func FindEnd(t *topo.Topology, at string) (*Tunnel, string, error) {
	node, name, ok := strings.Cut(at, ":")
	if !ok || node == "" || name == "" {
		return nil, "", fmt.Errorf("%q: give NODE:TUNNEL, a tunnel's end", at)
	}
	tu := Find(t, name)
	if tu == nil {
		var names []string
		for _, x := range Tunnels(t) {
			names = append(names, x.Name)
		}
		return nil, "", &topo.UnknownError{Lab: t.Name, What: "tunnel", Name: name, Known: names}
	}
	if _, _, ok := tu.End(node); !ok {
		return nil, "", fmt.Errorf("node %s is no end of tunnel %s (its ends: %s, %s)", node, name, tu.A.Node, tu.B.Node)
	}
	return tu, node, nil
}

func garbage(n int) []byte {
	if n == 0 {
		return nil
	}
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// apply installs a tunnel end's SAs and policies in a node's kernel.
func apply(l feature.Lab, node string, x xfrm.Tunnel) error {
	ns, err := l.NetNS(node)
	if err != nil {
		return err
	}
	h, err := kernel.XfrmHandle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := xfrm.Apply(h, x); err != nil {
		return fmt.Errorf("node %s: %w", node, err)
	}
	return nil
}

// NodeStarted implements feature.RestartHook. A node started again has
// its static SAs as the deploy made them, their sequence numbers from 1;
// the far end of each of its static-key tunnels gets its SAs again too,
// or its replay window drops what the node sends. A far end that is
// itself stopped is left for its own start.
func (Feature) NodeStarted(ctx context.Context, l feature.Lab, node string) error {
	for _, tu := range Tunnels(l.Topology()) {
		_, peer, ok := tu.End(node)
		if !ok || !tu.Static() || l.Stopped(peer.Node) {
			continue
		}
		if err := apply(l, peer.Node, tu.XFRM(peer.Node)); err != nil {
			return fmt.Errorf("tunnel %s: %w", tu.Name, err)
		}
	}
	return nil
}
