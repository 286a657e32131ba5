// Package mka is the MKA feature: a MACsec link keyed by MKA (IEEE
// 802.1X-2010) with one pre-shared CAK and its CKN, as ExpressRoute Direct
// keys its ports, instead of static SAKs. Debian's wpa_supplicant
// (macsec_linux) runs for each end inside its node, under a keeper that
// makes the MACsec device for it to adopt and keeps what is stacked on it
// configured. It holds the keying's checks, the keepers at deploy, the MKA
// table of inspect and the CAK rotation.
package mka

import (
	"encoding/hex"
	"fmt"

	"github.com/erlab-dev/erlab/lab/macsec"
	"github.com/erlab-dev/erlab/lab/topo"
)

// Name is the feature's name.
const Name = "mka"

// Cipher is the one suite MKA mode offers: Debian's wpa_supplicant 2.10
// negotiates no other (its macsec_csindex came in 2.11).
const Cipher = "GCM-AES-128"

// Keys is a link's validated MKA keying.
type Keys struct {
	CAK []byte `json:"-"` // never logged, printed or written anywhere but wpa_supplicant's 0600 configuration
	CKN []byte `json:"-"`
}

// Of returns a link's MKA keying, nil when it has none (or it is invalid).
func Of(l *topo.Link) *Keys { k, _ := l.Ext[Name].(*Keys); return k }

// Keyed says whether a link is keyed by MKA.
func Keyed(l *topo.Link) bool {
	m := macsec.Of(l)
	return m != nil && m.MKA != nil
}

// Feature is the MKA feature.
type Feature struct{}

// Name implements topo.Extension.
func (Feature) Name() string { return Name }

// Resolve implements topo.ResolveHook, after macsec's: each MKA link's
// keys, against what wpa_supplicant can do and ExpressRoute Direct's key
// rules: the CKN an even number of hex digits, up to 64; the CAK 32 hex
// digits for 128-bit ciphers, a shorter one zero-padded on the right as
// Azure does.
func (Feature) Resolve(t *topo.Topology, r topo.Reporter) {
	for i, l := range t.Links {
		m := macsec.Of(l)
		if m == nil || m.MKA == nil {
			continue
		}
		spec, _, _ := topo.SpecOf[*macsec.Spec](l.Specs, "macsec")
		if k := resolve(t, m, spec, fmt.Sprintf("links[%d]: macsec", i), r); k != nil {
			l.Ext[Name] = k
		}
	}
}

func resolve(t *topo.Topology, m *macsec.Config, spec *macsec.Spec, where string, r topo.Reporter) *Keys {
	if m.Cipher != Cipher && m.Cipher != "" {
		r.Errorf(spec.Pos, "%s: cipher %s needs static SAKs (keys:): in MKA mode Debian's wpa_supplicant 2.10 negotiates %s only (the 256-bit and XPN suites came in hostap 2.11)", where, m.Cipher, Cipher)
		return nil
	}
	if spec.Validate != "" && m.Validate != "strict" {
		r.Errorf(spec.Pos, "%s: validate %s: wpa_supplicant always validates strictly in MKA mode", where, m.Validate)
	}
	if spec.IncludeSCI != nil && !m.IncludeSCI {
		r.Errorf(spec.Pos, "%s: include-sci: wpa_supplicant always includes the SCI in MKA mode", where)
	}
	k := &Keys{}
	text, from, ok := topo.ReadSecret(m.MKA.CKN, t.Dir(), 16, where+": mka: ckn", r)
	if ok {
		ckn, err := hex.DecodeString(text)
		switch {
		case err != nil || len(text)%2 != 0:
			r.Errorf(m.MKA.CKN.Pos, "%s: mka: ckn: the CKN in %s must be an even number of hex digits", where, from)
		case len(ckn) == 0 || len(ckn) > 32:
			r.Errorf(m.MKA.CKN.Pos, "%s: mka: ckn: the CKN in %s has %d hex digits; ExpressRoute Direct takes 2 to 64", where, from, len(text))
		default:
			k.CKN = ckn
		}
	}
	n := macsec.Ciphers[Cipher]
	text, from, ok = topo.ReadSecret(m.MKA.CAK, t.Dir(), n, where+": mka: cak", r)
	if ok {
		cak, err := hex.DecodeString(text)
		switch {
		case err != nil || len(text)%2 != 0:
			r.Errorf(m.MKA.CAK.Pos, "%s: mka: cak: the CAK in %s must be hex digits, %d for %s", where, from, 2*n, Cipher)
		case len(cak) > n || len(cak) == 0:
			r.Errorf(m.MKA.CAK.Pos, "%s: mka: cak: the CAK in %s has %d hex digits; %s takes %d", where, from, len(text), Cipher, 2*n)
		default:
			if len(cak) < n {
				r.Warnf(m.MKA.CAK.Pos, "%s: mka: cak: the CAK in %s has %d hex digits; it is zero-padded on the right to %d, as Azure does", where, from, len(text), 2*n)
				cak = append(cak, make([]byte, n-len(cak))...)
			}
			k.CAK = cak
		}
	}
	if k.CAK == nil || k.CKN == nil {
		return nil
	}
	return k
}
