package ipsec

import (
	"context"
	"fmt"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/ipsec/xfrm"
	"github.com/erlab-dev/erlab/lab/kernel"
)

// EndInfo is one end of a tunnel as inspect shows it: never a key.
type EndInfo struct {
	Name      string `json:"name"`
	Node      string `json:"node"`
	Keying    string `json:"keying"` // static or ike
	Mode      string `json:"mode"`   // route or policy
	Interface string `json:"interface,omitempty"`
	// XFRM is what the kernel holds of a static tunnel's SAs, policies and
	// interface (an IKE tunnel's are in package ike's section).
	XFRM  *xfrm.Info `json:"xfrm,omitempty"`
	Error string     `json:"error,omitempty"`
}

// Inspect implements feature.InspectHook: the TUNNEL table, one row per
// tunnel end, read back from each node's kernel.
func (Feature) Inspect(_ context.Context, l feature.Lab) (*feature.Section, error) {
	sec := &feature.Section{Header: []string{"TUNNEL", "NODE", "KEYING", "MODE", "ALGORITHM", "OUTER", "SPI OUT/IN", "IF_ID", "PKTS OUT/IN", "STATE"}}
	var infos []EndInfo
	for _, node := range l.Nodes() {
		var ends []End
		if !l.State(Name, node, &ends) {
			continue
		}
		ns, err := l.NetNS(node)
		if err != nil {
			continue
		}
		for _, e := range ends {
			x := e.XFRM
			ei := EndInfo{Name: x.Name, Node: node, Keying: e.Keying, Mode: string(x.Mode), Interface: x.Interface}
			mode := ei.Mode
			if x.Interface != "" {
				mode += " (" + x.Interface + ")"
			}
			alg, outer, spis, ifid, pkts, state := string(x.Algorithm), x.Local.String()+" → "+x.Remote.String(), "-", "-", "-", "up"
			if x.IfID != 0 {
				ifid = fmt.Sprint(x.IfID)
			}
			if e.Keying == "static" {
				h, err := kernel.XfrmHandle(ns)
				if err != nil {
					return nil, err
				}
				info, err := xfrm.Status(h, x)
				h.Close()
				ei.XFRM = &info
				if err != nil {
					ei.Error = err.Error()
				}
				if info.Out != nil && info.In != nil {
					alg = string(info.Out.Algorithm)
					spis = fmt.Sprintf("%#x/%#x", info.Out.SPI, info.In.SPI)
					pkts = fmt.Sprintf("%d/%d", info.Out.Packets, info.In.Packets)
					if info.In.IntegrityFailures > 0 {
						state = fmt.Sprintf("up, %d integrity failures in", info.In.IntegrityFailures)
					}
				}
			} else {
				state = "keyed by IKE (see IKE)"
			}
			if ei.Error != "" {
				state = "BROKEN: " + ei.Error
			}
			infos = append(infos, ei)
			sec.Rows = append(sec.Rows, []string{x.Name, node, e.Keying, mode, alg, outer, spis, ifid, pkts, state})
		}
	}
	if len(infos) == 0 {
		return nil, nil
	}
	sec.Data = infos
	return sec, nil
}
