package ike

import (
	"fmt"
	"time"

	"github.com/erlab-dev/erlab/lab/ipsec"
	"github.com/erlab-dev/erlab/lab/ipsec/xfrm"
	"github.com/erlab-dev/erlab/lab/topo"
)

// Name is the feature's name.
const Name = "ike"

// Keying is a tunnel's validated IKEv2 keying.
type Keying struct {
	PSK                  Secret `json:"-"` // never logged, printed or written outside strongSwan's 0600 configuration
	DPD, Rekey, Lifetime time.Duration
}

// Topology defaults: dead-peer detection every second (with strongSwan's
// retransmits tuned, a dead peer is declared in 3–4 s), CHILD SAs rekeyed
// hourly.
const (
	DefaultDPD      = DefaultDPDDelay
	DefaultRekey    = DefaultRekeyTime
	DefaultLifetime = DefaultLifeTime
)

// Of returns a tunnel's IKE keying, nil when it has static keys (or its
// IKE keying is invalid).
func Of(t *topo.Topology, tu *ipsec.Tunnel) *Keying {
	m, _ := t.Ext[Name].(map[string]*Keying)
	return m[tu.Name]
}

// Feature is the IKEv2 keying feature: strongSwan in each end's node.
type Feature struct{}

// Name implements topo.Extension.
func (Feature) Name() string { return Name }

// Resolve implements topo.ResolveHook, after ipsec's: each IKE tunnel's
// pre-shared key and timers.
func (Feature) Resolve(t *topo.Topology, r topo.Reporter) {
	keyings := map[string]*Keying{}
	for i, tu := range ipsec.Tunnels(t) {
		if tu.IKE == nil {
			continue
		}
		where := fmt.Sprintf("tunnel %q", tu.Name)
		if tu.Name == "" {
			where = fmt.Sprintf("tunnels[%d]", i)
		}
		keyings[tu.Name] = resolve(tu.IKE, t.Dir(), where, r)
	}
	if len(keyings) > 0 {
		t.Ext[Name] = keyings
	}
}

func resolve(s *ipsec.IKESpec, dir, where string, ps topo.Reporter) *Keying {
	k := &Keying{DPD: DefaultDPD, Rekey: DefaultRekey, Lifetime: DefaultLifetime}
	text, from, ok := topo.ReadSecret(s.PSK, dir, 32, where+": ike: psk", ps)
	if ok {
		if len(text) < 16 {
			ps.Errorf(s.PSK.Pos, "%s: ike: psk: the pre-shared key in %s has %d characters; use at least 16 (erlab macsec keygen --bytes 32 makes one)", where, from, len(text))
		}
		k.PSK = Secret(text)
	}
	for _, d := range []struct {
		name string
		text string
		dst  *time.Duration
	}{{"dpd", s.DPD, &k.DPD}, {"rekey", s.Rekey, &k.Rekey}, {"lifetime", s.Lifetime, &k.Lifetime}} {
		if d.text == "" {
			continue
		}
		v, err := time.ParseDuration(d.text)
		if err != nil || v <= 0 {
			ps.Errorf(s.Pos, "%s: ike: %s %q: a duration such as 1s, 30m or 1h", where, d.name, d.text)
			continue
		}
		*d.dst = v
	}
	if k.Lifetime <= k.Rekey {
		ps.Errorf(s.Pos, "%s: ike: lifetime %s must be longer than rekey %s (the new SA is made before the old one expires)", where, k.Lifetime, k.Rekey)
	}
	return k
}

// NodeConns is what a node's charon runs: a connection per IKE tunnel
// end on it. ns and dir are the node's namespace and directory.
func NodeConns(t *topo.Topology, node, ns, dir string) Node {
	in := Node{NetNS: ns, Dir: dir}
	for _, tu := range ipsec.Tunnels(t) {
		self, peer, ok := tu.End(node)
		k := Of(t, tu)
		if !ok || k == nil {
			continue
		}
		c := Conn{Name: tu.Name, Local: self.Local, Remote: peer.Local, PSK: k.PSK, Algorithm: tu.Algorithm,
			Initiator: node == tu.A.Node, DPDDelay: k.DPD, RekeyTime: k.Rekey, LifeTime: k.Lifetime, Encap: tu.NATT}
		if tu.Mode == xfrm.RouteBased {
			c.IfID = tu.IfID
		} else {
			c.LocalTS, c.RemoteTS = self.Nets, peer.Nets
		}
		in.Conns = append(in.Conns, c)
	}
	return in
}
