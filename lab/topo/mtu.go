package topo

import "fmt"

// VLANTagLen is what one 802.1Q or 802.1ad tag adds to a frame.
const VLANTagLen = 4

// planMTU makes every stack of devices carry a full-size packet of its top
// interface: each parent gets the MTU of its largest child plus what that
// child adds inside the parent's payload. A parent whose MTU is unset is
// raised; one set too small is refused, with the numbers. What a child
// adds, as Linux counts it:
//
//   - a VLAN tag on a port: nothing. Linux keeps tags outside the MTU (a
//     VLAN's MTU may equal its parent's; veth carries the outer tag as
//     metadata and accepts one more in the frame).
//   - a VLAN tag above MACsec: 4 bytes (8 for QinQ). MACsec encrypts the
//     tags as payload, and the kernel holds a VLAN on a MACsec device to 4
//     bytes less than the device.
//   - MACsec: its SecTAG and ICV, 32 bytes with the SCI or 24 without.
//
// Measured in the microVM: a don't-fragment 1500-byte ping crosses QinQ
// over MACsec with the port at 1540 and MACsec at 1508, and not at 1536.
func planMTU(n *Node, ps *problems) {
	children := map[string][]*Interface{}
	for _, i := range n.Interfaces {
		if i.Parent != "" && !vlanCycle(n, i) {
			children[i.Parent] = append(children[i.Parent], i)
		}
	}
	need := map[string]int{}
	var walk func(i *Interface) int
	walk = func(i *Interface) int {
		if v, done := need[i.Name]; done {
			return v
		}
		need[i.Name] = 0 // a cycle ends here; validation has refused it
		want, because := i.MTU, ""
		for _, c := range children[i.Name] {
			cw := walk(c)
			if cw == 0 {
				continue
			}
			add := addsInside(n, c)
			if cw+add > want {
				want, because = cw+add, fmt.Sprintf("%s's %d bytes", c.Name, cw)
				if add > 0 {
					because += fmt.Sprintf(" and its %d bytes of %s", add, overheadName(c))
				}
			}
		}
		switch {
		case because == "":
			// Its own MTU, checked where it is read.
		case want > MaxMTU:
			ps.errorf(i.Pos, "node %q: interface %q: carrying %s needs an mtu of %d, more than %d", n.Name, i.Name, because, want, MaxMTU)
			want = 0 // said once, not again by each device below
		case i.MTU > 0 && want > i.MTU:
			ps.errorf(i.Pos, "node %q: interface %q: mtu %d is too small: carrying %s needs %d", n.Name, i.Name, i.MTU, because, want)
		case i.MTU == 0 && want > 0:
			i.MTU = want
		}
		need[i.Name] = want
		return want
	}
	for _, i := range n.Interfaces {
		walk(i)
	}
}

// addsInside is what an interface adds to its packets inside its parent's
// MTU (see planMTU).
func addsInside(n *Node, i *Interface) int {
	switch i.Type {
	case TypeMACsec:
		return MACsecOverhead(i.Link.MACsec.IncludeSCI)
	case TypeVLAN:
		if overMACsec(n, i) {
			return VLANTagLen
		}
	}
	return 0
}

func overheadName(i *Interface) string {
	if i.Type == TypeMACsec {
		return "SecTAG and ICV"
	}
	return string(i.VLANProtocol) + " tag"
}

// overMACsec says whether a VLAN sits, through other VLANs, on a MACsec
// device.
func overMACsec(n *Node, i *Interface) bool {
	for range len(n.Interfaces) {
		p := n.Interface(i.Parent)
		if p == nil {
			return false
		}
		if p.Type == TypeMACsec {
			return true
		}
		i = p
	}
	return false
}
