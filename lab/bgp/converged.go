package bgp

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/topo"
)

// WaitConverged waits until the routing is converged: every session of
// every router Established (or held down by its configuration), every
// best path installed in the kernel, and nothing of that changed for
// ConvergedQuiet — a lab's first Established sessions still exchange
// their updates.
func WaitConverged(ctx context.Context, l feature.Lab, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	var since time.Time
	for {
		snap, why := routingSnapshot(ctx, l)
		if why == "" {
			if snap != last {
				last, since = snap, time.Now()
			} else if time.Since(since) >= ConvergedQuiet {
				return nil
			}
		} else {
			last = ""
		}
		if time.Now().After(deadline) {
			if why == "" {
				why = "the routes were still changing"
			}
			return fmt.Errorf("not converged within %s: %s", timeout, why)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
}

// ConvergedQuiet is how long the routing must stay unchanged to count as
// converged.
const ConvergedQuiet = time.Second

// routingSnapshot sums up every router's sessions and best paths, or says
// what is not converged yet.
func routingSnapshot(ctx context.Context, l feature.Lab) (snap, why string) {
	var b strings.Builder
	t := l.Topology()
	if t == nil {
		return "", "the lab's topology file is gone"
	}
	// Every router's sessions first: what one end advertised must have
	// reached the other (a session Established whose updates are still
	// on their way is not converged).
	sessions := map[string][]NeighborInfo{}
	for _, n := range t.Nodes {
		if Of(n) == nil {
			continue
		}
		nbs, err := Neighbors(ctx, l, n.Name)
		if err != nil {
			return "", err.Error()
		}
		sessions[n.Name] = nbs
	}
	if why := undelivered(t, sessions); why != "" {
		return "", why
	}
	for _, n := range t.Nodes {
		if Of(n) == nil {
			continue
		}
		nbs := sessions[n.Name]
		for _, nb := range nbs {
			if nb.State != "established" && nb.Down == "" {
				return "", fmt.Sprintf("%s's session with %s is %s", n.Name, nb.Address, nb.State)
			}
			fmt.Fprintf(&b, "%s %s %s %d;", n.Name, nb.Address, nb.State, nb.Accepted)
		}
		routes, err := Routes(ctx, l, n.Name, true)
		if err != nil {
			return "", err.Error()
		}
		// What the router originates must be in its table before anything
		// can be said delivered: the agent adds its networks once GoBGP runs,
		// and in the slow microVM a session came up and stayed quiet for a
		// second before they were there (advertised 0, received 0).
		for _, p := range Of(n).Networks {
			if !slices.ContainsFunc(routes, func(r RouteInfo) bool { return r.Local && r.Prefix == p }) {
				return "", fmt.Sprintf("%s does not originate %s yet", n.Name, p)
			}
		}
		for _, r := range routes {
			if !r.Multipath {
				continue
			}
			if !r.Local && !r.Installed {
				return "", fmt.Sprintf("%s has not installed its route to %s via %s", n.Name, r.Prefix, r.NextHop)
			}
			fmt.Fprintf(&b, "%s %s %s;", n.Name, r.Prefix, r.NextHop)
		}
	}
	return b.String(), ""
}

// undelivered says which session between two of the lab's routers has
// not yet delivered what one end advertised ("" when all have).
func undelivered(t *topo.Topology, sessions map[string][]NeighborInfo) string {
	find := func(node string, addr netip.Addr) (NeighborInfo, bool) {
		for _, nb := range sessions[node] {
			if nb.Address == addr.String() {
				return nb, true
			}
		}
		return NeighborInfo{}, false
	}
	for _, a := range t.Nodes {
		ca := Of(a)
		if ca == nil {
			continue
		}
		for i := range ca.Neighbors {
			nb := &ca.Neighbors[i]
			out, ok := find(a.Name, nb.Address)
			if !ok || out.State != "established" {
				continue
			}
			for _, b := range t.Nodes {
				if b == a || Of(b) == nil || !hasAddress(b, nb.Address) {
					continue
				}
				in, ok := find(b.Name, localAddress(a, nb))
				if ok && in.State == "established" && in.Received != out.Advertised {
					return fmt.Sprintf("%s has received %d of the %d prefixes %s advertised to it", b.Name, in.Received, out.Advertised, a.Name)
				}
			}
		}
	}
	return ""
}
