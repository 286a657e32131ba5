package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	mdnetlink "github.com/mdlayher/netlink"

	"github.com/erlab-dev/erlab/lab/macsec"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/nodes"
)

// derive makes a per-key value both ends compute alike from the SAK they
// share: the key identifier and, for XPN suites, the salt. Neither reveals
// the key (a hash of a random 128- or 256-bit key).
func derive(label string, key []byte, n int) []byte {
	sum := sha256.Sum256(append([]byte("erlab "+label+" "), key...))
	return sum[:n]
}

// KeyID is the identifier erlab gives a static SAK: what inspect shows
// instead of the key.
func KeyID(key []byte) string { return hex.EncodeToString(derive("key id", key, macsec.KeyIDLen)) }

// configureMACsec creates one end of a link's MACsec: the device on the
// link's interface, its transmit SA with this end's key, and a receive
// channel and SA for the peer with the peer's key. The association number
// is 0 and packet numbers start at 1: ip macsec add ... tx sa 0 pn 1 on
// key ID KEY; ip macsec add ... rx sci PEER; ip macsec add ... rx sci PEER
// sa 0 pn 1 on key ID KEY.
func configureMACsec(rn *nodes.Node, t *topo.Topology, iface *topo.Interface) error {
	l, m := iface.Link, iface.Link.MACsec
	self, peer, txKey, rxKey, selfSSCI, peerSSCI := l.A, l.B, m.KeyA, m.KeyB, uint32(1), uint32(2)
	if !(self.Node == rn.Spec.Name && m.Lower(self.Iface) == iface.Parent) {
		self, peer, txKey, rxKey, selfSSCI, peerSSCI = peer, self, rxKey, txKey, peerSSCI, selfSSCI
	}
	cipher, err := macsec.ParseCipher(m.Cipher)
	if err != nil {
		return err
	}
	parent, err := rn.NL.LinkByName(iface.Parent)
	if err != nil {
		return fmt.Errorf("find %s: %w", iface.Parent, err)
	}
	validate := map[string]macsec.Validation{"strict": macsec.ValidateStrict, "check": macsec.ValidateCheck, "disabled": macsec.ValidateDisabled}[m.Validate]
	cfg := macsec.LinkConfig{Name: iface.Name, ParentIndex: parent.Attrs().Index, Port: 1, Cipher: cipher, Encrypt: m.Encrypt,
		IncludeSCI: m.IncludeSCI, ReplayProtect: m.ReplayProtect, Window: m.Window, Validate: validate}
	peerSCI := macsec.MakeSCI(t.Node(peer.Node).Interface(peer.Iface).MAC, 1)
	sa := func(key []byte, ssci uint32) macsec.SA { return staticSA(cipher, 0, key, ssci) }
	return withMACsec(rn.NetNS, func(cl *macsec.Client, conn *mdnetlink.Conn) error {
		if err := macsec.LinkAdd(conn, cfg); err != nil {
			return err
		}
		dev, err := rn.NL.LinkByName(iface.Name)
		if err != nil {
			return err
		}
		idx := dev.Attrs().Index
		if err := cl.AddTxSA(idx, sa(txKey, selfSSCI)); err != nil {
			return err
		}
		if err := cl.AddRxSC(idx, peerSCI); err != nil {
			return err
		}
		return cl.AddRxSA(idx, peerSCI, sa(rxKey, peerSSCI))
	})
}

// staticSA is an association for a static SAK: active, from packet number
// 1, with the key ID (and, for XPN, the salt) both ends derive from the key.
func staticSA(cipher macsec.Cipher, an uint8, key []byte, ssci uint32) macsec.SA {
	s := macsec.SA{AN: an, Active: true, PN: 1, Key: key, XPN: cipher.XPN(), SSCI: ssci}
	copy(s.KeyID[:], derive("key id", key, macsec.KeyIDLen))
	copy(s.Salt[:], derive("salt", key, macsec.SaltLen))
	return s
}

// MACsecInfo is a MACsec device as inspect shows it: never a key.
type MACsecInfo struct {
	Cipher     string   `json:"cipher"`
	SCI        string   `json:"sci"`
	Encrypt    bool     `json:"encrypt"`
	EncodingSA uint8    `json:"encoding_sa"`
	NextPN     uint64   `json:"next_pn"`
	KeyID      string   `json:"key_id"`
	PeerSCIs   []string `json:"peer_scis"`
	// Counters.
	OutPktsEncrypted uint64 `json:"out_pkts_encrypted"`
	OutPktsProtected uint64 `json:"out_pkts_protected"`
	InPktsOK         uint64 `json:"in_pkts_ok"`
	InPktsInvalid    uint64 `json:"in_pkts_invalid"`
	InPktsNotValid   uint64 `json:"in_pkts_not_valid"`
	InPktsNoSA       uint64 `json:"in_pkts_not_using_sa"`
	InPktsUnknownSCI uint64 `json:"in_pkts_unknown_sci"`
	InPktsNoTag      uint64 `json:"in_pkts_no_tag"`
	// MKA is the MKA session keying the device, when it is keyed by MKA.
	MKA *MKAInfo `json:"mka,omitempty"`
}

// readMACsec reads a MACsec device's state in a namespace.
func readMACsec(ns string, ifindex int) (*MACsecInfo, error) {
	var st *macsec.Status
	err := withMACsec(ns, func(cl *macsec.Client, _ *mdnetlink.Conn) (err error) {
		st, err = cl.Status(ifindex)
		return err
	})
	if err != nil {
		return nil, err
	}
	mi := &MACsecInfo{Cipher: st.Cipher.String(), SCI: st.SCI.String(), Encrypt: st.Encrypt, EncodingSA: st.EncodingSA,
		OutPktsEncrypted: st.OutPktsEncrypted, OutPktsProtected: st.OutPktsProtected, InPktsUnknownSCI: st.InPktsUnknownSCI, InPktsNoTag: st.InPktsNoTag}
	for _, sa := range st.TxSAs {
		if sa.AN == st.EncodingSA {
			mi.NextPN, mi.KeyID = sa.NextPN, hex.EncodeToString(sa.KeyID[:])
		}
	}
	for _, sc := range st.RxSCs {
		mi.PeerSCIs = append(mi.PeerSCIs, sc.SCI.String())
		mi.InPktsOK += sc.InPktsOK
		mi.InPktsInvalid += sc.InPktsInvalid
		mi.InPktsNotValid += sc.InPktsNotValid
		mi.InPktsNoSA += sc.InPktsNotUsingSA
	}
	return mi, nil
}
