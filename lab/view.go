package lab

import (
	"net/netip"

	"github.com/erlab-dev/erlab/lab/feature"
)

// View is a lab as a page draws it (erlab serve): its nodes, their
// interfaces and links, with what features say of them (VLAN tags, an
// encrypting layer), what rides over the links (tunnels), the addresses
// reachable across each link (so that a session's events can be put on
// the link it runs over). Never a key: it is built from names, addresses
// and labels only.
type View struct {
	Name     string        `json:"name"`
	Nodes    []ViewNode    `json:"nodes"`
	Links    []ViewLink    `json:"links"`
	Overlays []ViewOverlay `json:"overlays"`
	Peers    []ViewPeer    `json:"peers"`
}

// ViewNode is a node: its kind and group (on-premises, provider,
// microsoft, azure in the ExpressRoute model), and whether it is a switch.
type ViewNode struct {
	Name   string `json:"name"`
	Kind   string `json:"kind"`
	Group  string `json:"group,omitempty"`
	Switch bool   `json:"switch,omitempty"`
}

// ViewLink is a link: an id ("a:eth1 b:eth2") and its two ends.
type ViewLink struct {
	ID string  `json:"id"`
	A  ViewEnd `json:"a"`
	B  ViewEnd `json:"b"`
	// Protected names the layer that encrypts what the link carries (an
	// interface's PayloadLayer, as its feature names it), empty when
	// nothing does.
	Protected string `json:"protected,omitempty"`
}

// ViewEnd is a link end: the node's interface, its addresses, and what is
// stacked on it (a VLAN with its tags and addresses, an encrypting
// device), one line each.
type ViewEnd struct {
	Node      string   `json:"node"`
	Iface     string   `json:"iface"`
	Addresses []string `json:"addresses,omitempty"`
	Stacked   []string `json:"stacked,omitempty"`
}

// ViewOverlay is a feature's object over the links (feature.Overlay).
type ViewOverlay = feature.Overlay

// ViewPeer says that from Node, Address is reached directly over Link:
// the far end's address on a subnet of the link (or of a VLAN on it), the
// far end perhaps behind a switch.
type ViewPeer struct {
	Node    string `json:"node"`
	Address string `json:"address"`
	Link    string `json:"link"`
}

// View builds the lab's view from its topology.
func (l *Lab) View() (*View, error) {
	t, err := l.needTopology("view")
	if err != nil {
		return nil, err
	}
	g := grapher{t: t, opts: &l.opts}
	v := &View{Name: t.Name, Nodes: []ViewNode{}, Links: []ViewLink{}, Overlays: []ViewOverlay{}, Peers: []ViewPeer{}}
	for _, n := range t.Nodes {
		v.Nodes = append(v.Nodes, ViewNode{Name: n.Name, Kind: n.Kind, Group: n.Group, Switch: g.shape(n) == "switch"})
	}
	labels := hooks[feature.GraphHook](&l.opts)
	// Every address of every interface, by the link its interface rides.
	type addrOn struct {
		node string
		addr netip.Prefix
		link string
	}
	var addrs []addrOn
	for _, lk := range t.Links {
		vl := ViewLink{ID: lk.A.String() + " " + lk.B.String()}
		for k, ep := range lk.Ends() {
			n := t.Node(ep.Node)
			end := ViewEnd{Node: ep.Node, Iface: ep.Iface}
			if i := n.Interface(ep.Iface); i != nil {
				for _, a := range i.Addresses {
					end.Addresses = append(end.Addresses, a.String())
					addrs = append(addrs, addrOn{ep.Node, a, vl.ID})
				}
			}
			for _, i := range n.Interfaces {
				if !n.Above(i, ep.Iface) {
					continue
				}
				label := stackedLabel(labels, n, i)
				for _, a := range i.Addresses {
					label += " " + a.String()
					addrs = append(addrs, addrOn{ep.Node, a, vl.ID})
				}
				end.Stacked = append(end.Stacked, label)
				if i.PayloadLayer != "" {
					vl.Protected = i.PayloadLayer
				}
			}
			if k == 0 {
				vl.A = end
			} else {
				vl.B = end
			}
		}
		v.Links = append(v.Links, vl)
	}
	// A switch joins its links into one segment: ce1's link to the
	// provider's switch carries ce1's session with the MSEE behind it.
	seg := map[string]string{}
	var find func(string) string
	find = func(x string) string {
		if p, ok := seg[x]; ok && p != x {
			r := find(p)
			seg[x] = r
			return r
		}
		return x
	}
	bySwitch := map[string]string{}
	for _, vl := range v.Links {
		for _, end := range []ViewEnd{vl.A, vl.B} {
			if n := t.Node(end.Node); n == nil || g.shape(n) != "switch" {
				continue
			}
			if first, ok := bySwitch[end.Node]; ok {
				seg[find(vl.ID)] = find(first)
			} else {
				bySwitch[end.Node] = vl.ID
			}
		}
	}
	for _, a := range addrs {
		for _, b := range addrs {
			if a.node != b.node && find(a.link) == find(b.link) && a.addr.Masked() == b.addr.Masked() {
				v.Peers = append(v.Peers, ViewPeer{Node: a.node, Address: b.addr.Addr().String(), Link: a.link})
			}
		}
	}
	for _, h := range hooks[feature.OverlayHook](&l.opts) {
		v.Overlays = append(v.Overlays, h.Overlays(t)...)
	}
	return v, nil
}
