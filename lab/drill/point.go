package drill

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/erlab-dev/erlab/lab/bgp"
	"github.com/erlab-dev/erlab/lab/kernel"
)

func verdict(pass bool) string {
	if pass {
		return "PASS"
	}
	return "FAIL"
}

// checkPoint makes a check of no flow, now: verify encryption of a link
// end or tunnel, or the state of a router's sessions.
func checkPoint(ctx context.Context, l Lab, e Expect) Check {
	c := Check{Line: e.Line, At: e.At}
	if e.Encrypted != nil || e.NothingInClear {
		var want []string
		if e.Encrypted != nil {
			want = append(want, fmt.Sprintf("encrypted %t", *e.Encrypted))
		}
		if e.NothingInClear {
			want = append(want, "nothing in clear")
		}
		c.What = fmt.Sprintf("%s: %s at step %d", strings.Join(want, ", "), e.Target, e.At)
		res, err := l.VerifyEncryption(ctx, []string{e.Target})
		switch {
		case err != nil:
			c.Measured = "verify encryption: " + err.Error()
			return c
		case len(res) == 0:
			c.Measured = "verify encryption checked nothing"
			return c
		}
		var why []string
		secured, inClear := true, 0
		for _, r := range res {
			secured = secured && r.Pass
			inClear += r.MarkerHits + r.ClearFrames
			why = append(why, fmt.Sprintf("%s: %s (%d frames in clear)", verdict(r.Pass), r.Reason, r.MarkerHits+r.ClearFrames))
		}
		c.Measured = "verify encryption: " + strings.Join(why, "; ")
		c.Pass = (e.Encrypted == nil || secured == *e.Encrypted) && (!e.NothingInClear || inClear == 0)
		return c
	}
	c.What = fmt.Sprintf("session %s %s at step %d", e.Session, e.State, e.At)
	states, err := sessionStatesOf(ctx, l, *e.Session)
	if err != nil {
		c.Measured = err.Error()
		return c
	}
	c.Pass = len(states) > 0
	var got []string
	for peer, st := range states {
		got = append(got, peer+" "+st)
		if e.State == StateDown {
			c.Pass = c.Pass && st != "established"
		} else {
			c.Pass = c.Pass && st == e.State
		}
	}
	slices.Sort(got)
	c.Measured = strings.Join(got, ", ")
	return c
}

// sessionStatesOf reads the state of a router's sessions (the one with
// s.Peer, or all), by neighbour address.
func sessionStatesOf(ctx context.Context, l Lab, s Session) (map[string]string, error) {
	nbs, err := bgp.Neighbors(ctx, l, s.Node)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, nb := range nbs {
		if !s.Peer.IsValid() || nb.Address == s.Peer.String() {
			out[nb.Address] = nb.State
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no such session on the router", s)
	}
	return out, nil
}

// poll calls cond every 100 ms until it holds, ctx ends or timeout
// passes; the error then says what cond last said was missing.
func poll(ctx context.Context, timeout time.Duration, cond func() (bool, string)) error {
	deadline := time.Now().Add(timeout)
	for {
		ok, why := cond()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s: %s", timeout, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitEstablished waits until a router's sessions (or the one) are
// Established.
func waitEstablished(ctx context.Context, l Lab, s Session, timeout time.Duration) error {
	return poll(ctx, timeout, func() (bool, string) {
		states, err := sessionStatesOf(ctx, l, s)
		if err != nil {
			return false, err.Error()
		}
		for peer, st := range states {
			if st != "established" {
				return false, fmt.Sprintf("%s's session with %s is %s", s.Node, peer, st)
			}
		}
		return true, ""
	})
}

// waitRoute waits until a node's kernel (its main table) has a route to
// exactly r.Prefix, out of r.Dev when given (or, r.Gone, has none).
func waitRoute(ctx context.Context, l Lab, r RouteWait, timeout time.Duration) error {
	ns, err := l.NetNS(r.Node)
	if err != nil {
		return err
	}
	h, err := kernel.RouteHandle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	return poll(ctx, timeout, func() (bool, string) {
		routes, err := h.RouteListFiltered(familyOf(r), &netlink.Route{Dst: kernel.IPNet(r.Prefix), Table: 254}, netlink.RT_FILTER_DST|netlink.RT_FILTER_TABLE)
		if err != nil {
			return false, err.Error()
		}
		var devs []string
		for _, rt := range routes {
			idx := []int{rt.LinkIndex}
			for _, m := range rt.MultiPath {
				idx = append(idx, m.LinkIndex)
			}
			for _, i := range idx {
				if i == 0 {
					continue
				}
				if lk, err := h.LinkByIndex(i); err == nil {
					devs = append(devs, lk.Attrs().Name)
				}
			}
		}
		present := len(routes) > 0 && (r.Dev == "" || slices.Contains(devs, r.Dev))
		if r.Gone {
			return !present, fmt.Sprintf("%s still has its route to %s (out of %s)", r.Node, r.Prefix, strings.Join(devs, ", "))
		}
		if present {
			return true, ""
		}
		if len(routes) == 0 {
			return false, fmt.Sprintf("%s has no route to %s", r.Node, r.Prefix)
		}
		return false, fmt.Sprintf("%s's route to %s goes out of %s, not %s", r.Node, r.Prefix, strings.Join(devs, ", "), r.Dev)
	})
}

func familyOf(r RouteWait) int {
	if r.Prefix.Addr().Is4() {
		return netlink.FAMILY_V4
	}
	return netlink.FAMILY_V6
}
