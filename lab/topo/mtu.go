package topo

import "fmt"

// planMTU makes every stack of devices carry a full-size packet of its top
// interface: each parent gets the MTU of its largest child plus what that
// child adds inside the parent's payload. A parent whose MTU is unset is
// raised; one set too small is refused, with the numbers. What a child
// adds is its feature's to say (OverheadHook): a VLAN tag on a port adds
// nothing, as Linux keeps tags outside the MTU, but a tag on a device that
// carries tags as payload (PayloadLayer: MACsec) adds 4 bytes, and MACsec
// its SecTAG and ICV.
func planMTU(n *Node, ps *problems, exts []Extension) {
	children := map[string][]*Interface{}
	for _, i := range n.Interfaces {
		if i.Parent != "" && !stackCycle(n, i) {
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
			add, what := overhead(n, c, exts)
			if cw+add > want {
				want, because = cw+add, fmt.Sprintf("%s's %d bytes", c.Name, cw)
				if add > 0 {
					because += fmt.Sprintf(" and its %d bytes of %s", add, what)
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

// overhead is what an interface adds to its packets inside its parent's
// MTU, as its feature says.
func overhead(n *Node, i *Interface, exts []Extension) (int, string) {
	for _, e := range exts {
		if h, ok := e.(OverheadHook); ok {
			if b, what, ok := h.Overhead(n, i); ok {
				return b, what
			}
		}
	}
	return 0, ""
}

// CarriesTagsAsPayload says whether an interface sits, through its parents,
// on a device that carries VLAN tags as payload (see PayloadLayer).
func CarriesTagsAsPayload(n *Node, i *Interface) bool {
	for range len(n.Interfaces) {
		p := n.Interface(i.Parent)
		if p == nil {
			return false
		}
		if p.PayloadLayer != "" {
			return true
		}
		i = p
	}
	return false
}
