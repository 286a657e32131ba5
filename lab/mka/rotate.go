package mka

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/fileutil"
	"github.com/erlab-dev/erlab/lab/macsec"
	"github.com/erlab-dev/erlab/lab/probe"
	"github.com/erlab-dev/erlab/lab/topo"
)

// Rotation is a new CAK/CKN for an MKA link.
type Rotation struct {
	CAK []byte // nil: a fresh random one
	CKN []byte // nil: keep the link's current CKN
	// OneSide applies the new key to the named end only, leaving the link
	// down until the other end gets the same key (a second rotation).
	OneSide bool
	// Gap is how long the second end keeps the old key after the first
	// has the new one: the window an operator takes between the two.
	Gap time.Duration
	// NoProbe sends no probe stream across the link: the caller measures
	// (a drill's flows).
	NoProbe bool
}

// RotateReport says what an MKA key rotation did and what it cost.
type RotateReport struct {
	Link  string   `json:"link"`
	Sides []string `json:"sides"` // in the order they got the new key
	CKN   string   `json:"ckn"`
	// Secured is the time from the first end's change until both ends were
	// secured again (0 when one side only was changed).
	Secured time.Duration `json:"secured_ns"`
	// Down, when one side only was changed, is the time from the change
	// until that end stopped being secured: the link is down from then on,
	// until the other end gets the same key.
	Down time.Duration `json:"down_ns,omitempty"`
	// Completes says that a one-side change gave this end the key the other
	// already held: the second half of a rotation done one side at a time.
	Completes bool `json:"completes,omitempty"`
	// Probe is the probe stream sent across the link during the rotation,
	// from ProbeFrom to ProbeTo; nil when the link carries no addresses.
	Probe     *probe.Report `json:"probe,omitempty"`
	ProbeFrom string        `json:"probe_from,omitempty"`
	ProbeTo   string        `json:"probe_to,omitempty"`
}

// ProbeRate is the rate of the probe stream a rotation measures its
// outage with: a 10 ms resolution.
const ProbeRate = 100

// Rotate applies a new CAK/CKN to an MKA link one end at a time, as
// ExpressRoute Direct's key rotation goes: first the end named, then, after
// the gap, the other. MKA cannot do this without loss — while the ends hold
// different keys nothing passes — so a probe stream crosses the link
// meanwhile and the report says how long the outage was. Each end's
// wpa_supplicant re-reads its configuration (and recreates its MACsec
// device, which the end's keeper configures again).
func Rotate(ctx context.Context, lab feature.Lab, node, iface string, r Rotation) (*RotateReport, error) {
	t := lab.Topology()
	if t == nil {
		return nil, fmt.Errorf("lab %s: rotating keys needs its topology file", lab.Name())
	}
	self, peer, l, ok := macsec.EndOf(t, node, iface)
	if !ok || Of(l) == nil {
		return nil, fmt.Errorf("%s:%s is not an end of an MKA link", node, iface)
	}
	keys := Of(l)
	dir := func(e macsec.End) string { return lab.NodeDir(e.Node) }
	var err error
	if r.CAK == nil {
		r.CAK = make([]byte, len(keys.CAK))
		rand.Read(r.CAK)
	}
	if want := len(keys.CAK); len(r.CAK) != want {
		return nil, fmt.Errorf("the new CAK has %d hex digits; %s takes %d", 2*len(r.CAK), Cipher, 2*want)
	}
	if r.CKN == nil {
		if r.CKN, err = currentCKN(dir(self), self.Lower); err != nil {
			return nil, err
		}
	}
	if len(r.CKN) == 0 || len(r.CKN) > 32 {
		return nil, fmt.Errorf("the new CKN has %d hex digits; 2 to 64", 2*len(r.CKN))
	}
	rep := &RotateReport{Link: self.String() + " — " + peer.String(), CKN: hex.EncodeToString(r.CKN)}
	sides := []macsec.End{self}
	if !r.OneSide {
		sides = append(sides, peer)
	}

	// A probe stream across the link, if both ends have addresses on it.
	var probeDone chan error
	stopProbe := func() {}
	if from, to, ok := probePair(t, l, self, peer); ok && !r.NoProbe {
		pctx, cancel := context.WithCancel(ctx)
		stopProbe = cancel
		rep.ProbeFrom, rep.ProbeTo = self.Node, to.String()
		probeDone = make(chan error, 1)
		go func() {
			pr, err := probe.Between(pctx, t, from, to.String(), probe.Config{Rate: ProbeRate, Duration: 10 * time.Minute, Port: 7011})
			rep.Probe = &pr
			probeDone <- err
		}()
		time.Sleep(500 * time.Millisecond) // a baseline before the change
	}
	finish := func() error {
		stopProbe()
		if probeDone != nil {
			if err := <-probeDone; err != nil {
				return fmt.Errorf("probe: %w", err)
			}
		}
		return nil
	}

	start := time.Now()
	for k, ep := range sides {
		if k > 0 && r.Gap > 0 {
			time.Sleep(r.Gap)
		}
		if err := applyMKAKey(dir(ep), ep.Lower, r.CAK, r.CKN); err != nil {
			finish()
			return nil, fmt.Errorf("%s: %w", ep, err)
		}
		rep.Sides = append(rep.Sides, ep.String())
	}
	// One side changed to the key the other already holds completes a
	// rotation done one side at a time: the link comes back up.
	completes := false
	if r.OneSide {
		cak, ckn, err := currentKeys(dir(peer), peer.Lower)
		completes = err == nil && bytes.Equal(cak, r.CAK) && bytes.Equal(ckn, r.CKN)
	}
	rep.Completes = completes
	if r.OneSide && !completes {
		// The link must go down: wait until this end is no longer secured,
		// then keep probing a moment so the report shows the outage.
		deadline := time.Now().Add(UpTimeout)
		for {
			a, err := mkaState(dir(self), self.Lower)
			if err == nil && !a.Secured {
				rep.Down = time.Since(start)
				break
			}
			if time.Now().After(deadline) {
				finish()
				return nil, fmt.Errorf("%s: still secured %s after only one end got a new key", rep.Link, UpTimeout)
			}
			select {
			case <-ctx.Done():
				finish()
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		if probeDone != nil {
			time.Sleep(2 * time.Second)
		}
	} else {
		// Right after the change the old session may still say secured.
		time.Sleep(time.Second)
		deadline := time.Now().Add(UpTimeout)
		for {
			a, errA := mkaState(dir(self), self.Lower)
			b, errB := mkaState(dir(peer), peer.Lower)
			if errA == nil && errB == nil && a.Secured && b.Secured && a.CKN == rep.CKN && b.CKN == rep.CKN {
				rep.Secured = time.Since(start)
				break
			}
			if time.Now().After(deadline) {
				finish()
				why := "no answer"
				if errA == nil && !a.Secured {
					why = self.String() + ": " + a.Problem
				} else if errB == nil {
					why = peer.String() + ": " + b.summary()
				}
				return nil, fmt.Errorf("%s not secured %s after the new key: %s", rep.Link, UpTimeout, why)
			}
			select {
			case <-ctx.Done():
				finish()
				return nil, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
		// Keep probing a little: the outage ends when packets pass, which
		// is a moment after both ends say secured.
		if probeDone != nil {
			time.Sleep(2 * time.Second)
		}
	}
	return rep, finish()
}

// probePair finds addresses on the two ends of a link, above its MACsec
// devices, in one subnet: the sender's node and the receiver's address.
func probePair(t *topo.Topology, l *topo.Link, self, peer macsec.End) (from string, to netip.Addr, ok bool) {
	sn, pn := t.Node(self.Node), t.Node(peer.Node)
	for _, si := range sn.Interfaces {
		if !mkaOwned(sn, si) || !sn.Above(si, self.Lower) {
			continue
		}
		for _, sp := range si.Addresses {
			for _, pi := range pn.Interfaces {
				if !mkaOwned(pn, pi) || !pn.Above(pi, peer.Lower) {
					continue
				}
				for _, pp := range pi.Addresses {
					if sp.Masked() == pp.Masked() && sp.Addr().Is4() {
						return self.Node, pp.Addr(), true
					}
				}
			}
		}
	}
	return "", netip.Addr{}, false
}

// currentCKN reads the CKN an end's wpa_supplicant is configured with.
func currentCKN(dir, port string) ([]byte, error) {
	_, ckn, err := currentKeys(dir, port)
	return ckn, err
}

// currentKeys reads the CAK and CKN an end's wpa_supplicant is configured
// with (its 0600 configuration, the only place the CAK is written).
func currentKeys(dir, port string) (cak, ckn []byte, err error) {
	_, confPath := mkaFiles(dir, port)
	b, err := os.ReadFile(confPath)
	if err != nil {
		return nil, nil, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "mka_ckn="); ok {
			if ckn, err = hex.DecodeString(v); err != nil {
				return nil, nil, err
			}
		}
		if v, ok := strings.CutPrefix(line, "mka_cak="); ok {
			if cak, err = hex.DecodeString(v); err != nil {
				return nil, nil, err
			}
		}
	}
	if ckn == nil || cak == nil {
		return nil, nil, fmt.Errorf("%s has no mka_cak or mka_ckn", confPath)
	}
	return cak, ckn, nil
}

// applyMKAKey rewrites an end's wpa_supplicant configuration with a new
// CAK/CKN and has it re-read it.
func applyMKAKey(dir, port string, cak, ckn []byte) error {
	_, confPath := mkaFiles(dir, port)
	b, err := os.ReadFile(confPath)
	if err != nil {
		return err
	}
	lines := strings.Split(string(b), "\n")
	for k, line := range lines {
		indent := line[:len(line)-len(strings.TrimLeft(line, "\t "))]
		switch {
		case strings.HasPrefix(strings.TrimSpace(line), "mka_cak="):
			lines[k] = indent + "mka_cak=" + hex.EncodeToString(cak)
		case strings.HasPrefix(strings.TrimSpace(line), "mka_ckn="):
			lines[k] = indent + "mka_ckn=" + hex.EncodeToString(ckn)
		}
	}
	if err := fileutil.WriteFile(confPath, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		return err
	}
	cfgPath, _ := mkaFiles(dir, port)
	k, err := readKeeper(cfgPath)
	if err != nil {
		return err
	}
	reply, err := wpaCommand(filepath.Join(k.CtrlDir, port), "RECONFIGURE")
	if err != nil {
		return fmt.Errorf("wpa_supplicant: %w", err)
	}
	if strings.TrimSpace(reply) != "OK" {
		return fmt.Errorf("wpa_supplicant refused to reconfigure: %s", strings.TrimSpace(reply))
	}
	return nil
}
