package macsec

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"

	mdnetlink "github.com/mdlayher/netlink"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/macsec/genl"
)

// Info is a MACsec device as inspect shows it: never a key.
type Info struct {
	Node       string   `json:"node"`
	Device     string   `json:"device"`
	Port       string   `json:"port"` // the device it sits on
	Cipher     string   `json:"cipher"`
	SCI        string   `json:"sci"`
	Encrypt    bool     `json:"encrypt"`
	EncodingSA uint8    `json:"encoding_sa"`
	NextPN     uint64   `json:"next_pn"`
	KeyID      string   `json:"key_id"` // of the transmit SA in use; "" when there is none
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
}

// Read reads a MACsec device's state in a namespace.
func Read(ns string, ifindex int) (*Info, error) {
	var st *genl.Status
	err := With(ns, func(cl *genl.Client, _ *mdnetlink.Conn) (err error) {
		st, err = cl.Status(ifindex)
		return err
	})
	if err != nil {
		return nil, err
	}
	mi := &Info{Cipher: st.Cipher.String(), SCI: st.SCI.String(), Encrypt: st.Encrypt, EncodingSA: st.EncodingSA,
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

// ReadDevice reads a node's MACsec device by name.
func ReadDevice(ns, device string) (*Info, error) {
	h, err := kernel.RouteHandle(ns)
	if err != nil {
		return nil, err
	}
	dev, err := h.LinkByName(device)
	h.Close()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", device, err)
	}
	return Read(ns, dev.Attrs().Index)
}

// Inspect implements feature.InspectHook: every MACsec device of the lab,
// as the kernel has it — whoever keys it.
func (Feature) Inspect(_ context.Context, l feature.Lab) (*feature.Section, error) {
	var infos []*Info
	sec := &feature.Section{Header: []string{"MACSEC", "CIPHER", "MODE", "SCI", "AN", "NEXT PN", "KEY ID", "OUT PKTS", "IN OK", "IN BAD"}}
	for _, node := range l.Nodes() {
		ns, err := l.NetNS(node)
		if err != nil {
			continue // not there: the engine's table says so
		}
		links, err := l.Links(node)
		if err != nil {
			return nil, err
		}
		names := map[int]string{}
		for _, lk := range links {
			names[lk.Attrs().Index] = lk.Attrs().Name
		}
		for _, lk := range links {
			if lk.Type() != "macsec" {
				continue
			}
			mi, err := Read(ns, lk.Attrs().Index)
			if errors.Is(err, genl.ErrNoDevice) {
				continue // removed since the links were read (an MKA restart makes it anew)
			}
			if err != nil {
				return nil, fmt.Errorf("%s:%s: %w", node, lk.Attrs().Name, err)
			}
			mi.Node, mi.Device, mi.Port = node, lk.Attrs().Name, names[lk.Attrs().ParentIndex]
			infos = append(infos, mi)
			mode := "integrity only"
			if mi.Encrypt {
				mode = "encrypt"
			}
			keyID := mi.KeyID
			if keyID == "" {
				keyID = "- (no SA: not secured)"
			}
			sec.Rows = append(sec.Rows, []string{node + ":" + mi.Device, mi.Cipher, mode, mi.SCI, fmt.Sprint(mi.EncodingSA), fmt.Sprint(mi.NextPN), keyID,
				fmt.Sprint(mi.OutPktsEncrypted + mi.OutPktsProtected), fmt.Sprint(mi.InPktsOK), fmt.Sprint(mi.InPktsNotValid + mi.InPktsInvalid)})
		}
	}
	if len(infos) == 0 {
		return nil, nil
	}
	sec.Data = infos
	return sec, nil
}
