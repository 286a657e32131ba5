package bgp

import (
	"fmt"
	"net/netip"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
)

// PathInfo is what erlab reads from a BGP path.
type PathInfo struct {
	Prefix      netip.Prefix `json:"prefix"`
	NextHop     netip.Addr   `json:"next_hop"`
	ASPath      []uint32     `json:"as_path"`
	Origin      uint32       `json:"origin"`
	LocalPref   uint32       `json:"local_pref"`
	MED         uint32       `json:"med"`
	Communities []string     `json:"communities,omitempty"`
	Best        bool         `json:"best"`
	Multipath   bool         `json:"multipath"` // best, or equal to it and used alongside
	Neighbor    string       `json:"neighbor,omitempty"`
	Local       bool         `json:"local"` // originated by this node
	Filtered    bool         `json:"filtered,omitempty"`
}

// defaultLocalPref is what BGP assumes when a path carries none.
const defaultLocalPref = 100

// DescribePath reads a path of GoBGP's API.
func DescribePath(prefix string, p *api.Path) PathInfo {
	pi := PathInfo{Best: p.GetBest(), Neighbor: p.GetNeighborIp(), LocalPref: defaultLocalPref, Filtered: p.GetFiltered()}
	pi.Prefix, _ = netip.ParsePrefix(prefix)
	for _, a := range p.GetPattrs() {
		switch {
		case a.GetOrigin() != nil:
			pi.Origin = a.GetOrigin().GetOrigin()
		case a.GetNextHop() != nil:
			pi.NextHop, _ = netip.ParseAddr(a.GetNextHop().GetNextHop())
		case a.GetMpReach() != nil:
			if nh := a.GetMpReach().GetNextHops(); len(nh) > 0 {
				pi.NextHop, _ = netip.ParseAddr(nh[0])
			}
		case a.GetAsPath() != nil:
			for _, seg := range a.GetAsPath().GetSegments() {
				pi.ASPath = append(pi.ASPath, seg.GetNumbers()...)
			}
		case a.GetLocalPref() != nil:
			pi.LocalPref = a.GetLocalPref().GetLocalPref()
		case a.GetMultiExitDisc() != nil:
			pi.MED = a.GetMultiExitDisc().GetMed()
		case a.GetCommunities() != nil:
			for _, c := range a.GetCommunities().GetCommunities() {
				pi.Communities = append(pi.Communities, fmt.Sprintf("%d:%d", c>>16, c&0xffff))
			}
		}
	}
	// A path this node originates has no next hop of its own (0.0.0.0, ::).
	pi.Local = !pi.NextHop.IsValid() || pi.NextHop.IsUnspecified()
	return pi
}

// MarkMultipath sets Multipath on the best path and on every other path
// equal to it on the criteria routers use for multipath (RFC 4271 9.1.2.2 up
// to MED, and the same neighbouring AS): the set the FIB installs as ECMP.
// Without multipath only the best path is marked.
func MarkMultipath(paths []PathInfo, multipath bool) {
	// With multipath on, GoBGP flags as best every path that ties with its
	// best, whatever the neighbouring AS; its best is the first it lists.
	var best *PathInfo
	for i := range paths {
		if paths[i].Best {
			best = &paths[i]
			break
		}
	}
	if best == nil {
		return
	}
	for i := range paths {
		paths[i].Multipath = false
	}
	best.Multipath = true
	if !multipath {
		return
	}
	for i := range paths {
		p := &paths[i]
		if p == best || p.Filtered || p.Local || p.NextHop == best.NextHop {
			continue
		}
		if p.LocalPref == best.LocalPref && len(p.ASPath) == len(best.ASPath) && p.Origin == best.Origin &&
			p.MED == best.MED && firstAS(p.ASPath) == firstAS(best.ASPath) {
			p.Multipath = true
		}
	}
}

func firstAS(path []uint32) uint32 {
	if len(path) == 0 {
		return 0
	}
	return path[0]
}

// nlriPrefix reads the prefix of a path from GoBGP's watch events.
func nlriPrefix(p *apiutil.Path) (netip.Prefix, bool) {
	if p == nil || p.Nlri == nil {
		return netip.Prefix{}, false
	}
	pre, err := netip.ParsePrefix(p.Nlri.String())
	return pre, err == nil
}
