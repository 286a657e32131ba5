package macsec

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	mdnetlink "github.com/mdlayher/netlink"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/macsec/genl"
)

// RotateReport says what a static key rotation did.
type RotateReport struct {
	Link      string        `json:"link"`
	FromAN    uint8         `json:"from_an"`
	ToAN      uint8         `json:"to_an"`
	NewKeyIDs []string      `json:"new_key_ids"` // per direction: A's, then B's
	Took      time.Duration `json:"took_ns"`
}

// macsecEnd is one end of a MACsec link during a rotation.
type macsecEnd struct {
	ns      string
	ifindex int
	sci     genl.SCI
	ssci    uint32
	an      uint8 // the encoding AN now
}

// Rotate rotates a static-key MACsec link's SAKs without losing a
// packet, the way 802.1X-2010 key servers do it: fresh random SAKs on the
// next association number are installed for receive on both ends first,
// then for transmit; then both ends switch their encoding AN; then, once
// frames in flight under the old keys have landed, the old SAs go. The new
// keys exist only in the kernels. ep names either end (NODE:IFACE, the
// link end or its MACsec device).
func Rotate(ctx context.Context, lab feature.Lab, node, iface string) (*RotateReport, error) {
	return rotate(ctx, lab, node, iface, false)
}

// resync is a rotation for ends that no longer agree: one end started
// again from the deploy's SAs while the other kept its own (and its
// replay window, which drops the restarted end's packet numbers). Both
// get fresh SAKs on an AN neither sends on, and each retires its own.
func resync(ctx context.Context, lab feature.Lab, node, iface string) (*RotateReport, error) {
	return rotate(ctx, lab, node, iface, true)
}

func rotate(ctx context.Context, lab feature.Lab, node, iface string, resync bool) (*RotateReport, error) {
	t := lab.Topology()
	if t == nil {
		return nil, fmt.Errorf("lab %s: rotating keys needs its topology file", lab.Name())
	}
	_, _, l, ok := EndOf(t, node, iface)
	if !ok {
		return nil, fmt.Errorf("%s:%s is not an end of a MACsec link", node, iface)
	}
	m := Of(l)
	if !m.Static() {
		return nil, fmt.Errorf("%s:%s: the link is keyed by MKA: its CAK is rotated, not its SAKs (mka.Rotate)", node, iface)
	}
	cipher, err := genl.ParseCipher(m.Cipher)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var ends [2]macsecEnd
	for i, ep := range l.Ends() {
		ns, err := lab.NetNS(ep.Node)
		if err != nil {
			return nil, err
		}
		h, err := kernel.RouteHandle(ns)
		if err != nil {
			return nil, err
		}
		dev, err := h.LinkByName(m.Device)
		h.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %s: %w", ep.Node, m.Device, err)
		}
		var st *genl.Status
		if err := With(ns, func(cl *genl.Client, _ *mdnetlink.Conn) (err error) {
			st, err = cl.Status(dev.Attrs().Index)
			return err
		}); err != nil {
			return nil, err
		}
		ends[i] = macsecEnd{ns: ns, ifindex: dev.Attrs().Index, sci: st.SCI, ssci: uint32(i + 1), an: st.EncodingSA}
	}
	if ends[0].an != ends[1].an && !resync {
		return nil, fmt.Errorf("the ends send on different ANs (%d and %d); rotate after they agree", ends[0].an, ends[1].an)
	}
	old := ends[0].an
	next := (old + 1) % 4
	for next == ends[0].an || next == ends[1].an {
		next = (next + 1) % 4
	}
	keys := [2][]byte{make([]byte, cipher.KeyLen()), make([]byte, cipher.KeyLen())}
	for _, k := range keys {
		if _, err := rand.Read(k); err != nil {
			return nil, err
		}
	}
	rep := &RotateReport{Link: linkName(l), FromAN: old, ToAN: next, NewKeyIDs: []string{KeyID(keys[0]), KeyID(keys[1])}}
	// Each step on both ends before the next step anywhere.
	steps := []func(self, peer macsecEnd, tx, rx []byte) error{
		func(self, peer macsecEnd, tx, rx []byte) error { // receive first
			return With(self.ns, func(cl *genl.Client, _ *mdnetlink.Conn) error {
				return cl.AddRxSA(self.ifindex, peer.sci, StaticSA(cipher, next, rx, peer.ssci))
			})
		},
		func(self, peer macsecEnd, tx, rx []byte) error { // then transmit, not yet used
			return With(self.ns, func(cl *genl.Client, _ *mdnetlink.Conn) error {
				return cl.AddTxSA(self.ifindex, StaticSA(cipher, next, tx, self.ssci))
			})
		},
		func(self, peer macsecEnd, tx, rx []byte) error { // switch
			return With(self.ns, func(_ *genl.Client, conn *mdnetlink.Conn) error {
				return genl.SetEncodingSA(conn, self.ifindex, next)
			})
		},
	}
	for _, step := range steps {
		for i := range ends {
			if err := step(ends[i], ends[1-i], keys[i], keys[1-i]); err != nil {
				return rep, fmt.Errorf("rotate %s: %w", rep.Link, err)
			}
		}
	}
	// Frames sent under the old key may still be in flight: retire it after.
	select {
	case <-ctx.Done():
		return rep, ctx.Err()
	case <-time.After(100 * time.Millisecond):
	}
	for i := range ends {
		self, peer := ends[i], ends[1-i]
		// The kernel deletes only inactive SAs (EBUSY otherwise).
		if err := With(self.ns, func(cl *genl.Client, _ *mdnetlink.Conn) error {
			off := genl.SA{AN: self.an, XPN: cipher.XPN()}
			if err := cl.UpdTxSA(self.ifindex, off); err != nil {
				return err
			}
			if err := cl.DelTxSA(self.ifindex, self.an); err != nil {
				return err
			}
			if resync {
				// What this end receives on is what the peer sent on
				// before its restart: every other AN goes, whichever
				// is there.
				for an := range uint8(4) {
					if an != next {
						off.AN = an
						if cl.UpdRxSA(self.ifindex, peer.sci, off) == nil {
							cl.DelRxSA(self.ifindex, peer.sci, an)
						}
					}
				}
				return nil
			}
			off.AN = peer.an
			if err := cl.UpdRxSA(self.ifindex, peer.sci, off); err != nil {
				return err
			}
			return cl.DelRxSA(self.ifindex, peer.sci, peer.an)
		}); err != nil {
			return rep, fmt.Errorf("rotate %s: retire AN %d: %w", rep.Link, self.an, err)
		}
	}
	rep.Took = time.Since(start)
	return rep, nil
}
