package bgp

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/erlab-dev/erlab/lab/kernel"
	api "github.com/osrg/gobgp/v4/api"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// RouteProtocol marks the kernel routes the agent owns, as `ip route` shows
// them: "proto bgp".
const RouteProtocol = unix.RTPROT_BGP

// RouteMetric is the metric of the agent's routes, as FRR's zebra gives
// eBGP routes: the kernel matches an IPv4 replace by destination and
// metric, not by protocol, so at metric 0 a peer announcing a node's own
// subnet would overwrite its connected route (and a flush then delete it).
// At 20 the connected or static route keeps precedence, as its
// administrative distance gives it on a router.
const RouteMetric = 20

// syncRetry is how soon a failed route write is tried again.
const syncRetry = time.Second

// fib keeps the node's kernel routing table in step with BGP: GoBGP
// installs nothing itself, and its zebra client does not work with Debian's
// FRR 8.4 zebra (measured: nexthop tracking fails), so this is ours. Each
// best-path event marks a prefix; one goroutine reads the prefix's paths
// back from the RIB and replaces the kernel route with the best path's next
// hop, or the ECMP set when multipath is on, or removes it. Reading back
// rather than applying deltas makes every sync idempotent.
type fib struct {
	h *netlink.Handle
	// routes is where sync writes: h, or a unit test's fake kernel.
	routes  routeWriter
	log     *slog.Logger
	mu      sync.Mutex
	pending map[netip.Prefix]bool
	wake    chan struct{}
}

// routeWriter is the part of a *netlink.Handle that sync writes through.
type routeWriter interface {
	// RouteReplace is `ip route replace`.
	RouteReplace(*netlink.Route) error
	// RouteDel is `ip route del`.
	RouteDel(*netlink.Route) error
}

func newFIB(log *slog.Logger) (*fib, error) {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return nil, err
	}
	return &fib{h: h, routes: h, log: log.With("component", "fib"), pending: map[netip.Prefix]bool{}, wake: make(chan struct{}, 1)}, nil
}

func (f *fib) close() { f.h.Close() }

func (f *fib) changed(p netip.Prefix) {
	f.mu.Lock()
	f.pending[p] = true
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

func (f *fib) run(ctx context.Context, client api.GoBgpServiceClient, multipath bool) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.wake:
		}
		f.mu.Lock()
		batch := f.pending
		f.pending = map[netip.Prefix]bool{}
		f.mu.Unlock()
		// A burst (a session's first table, a leak of thousands) is read
		// back in one pass over the table rather than one query per
		// prefix: 4,096 queries took most of a minute in the microVM.
		var table map[netip.Prefix][]PathInfo
		if len(batch) > bulkSync {
			var err error
			if table, err = readTable(ctx, client, batch); err != nil && ctx.Err() == nil {
				f.log.Warn("read the table; syncing prefix by prefix", "err", err)
				table = nil
			}
		}
		for p := range batch {
			var err error
			if table != nil {
				err = f.apply(p, table[p], multipath)
			} else {
				err = f.sync(ctx, client, p, multipath)
			}
			if err != nil && ctx.Err() == nil {
				// Tried again in a second: the kernel stays wrong only
				// until then, not until the prefix's next change.
				f.log.Warn("sync route; retrying in 1 s", "prefix", p, "err", err)
				time.AfterFunc(syncRetry, func() { f.changed(p) })
			}
		}
	}
}

// NextHops returns the next hops the FIB installs for a prefix's paths.
func NextHops(paths []PathInfo) []netip.Addr {
	var nhs []netip.Addr
	for _, p := range paths {
		if p.Multipath && !p.Local {
			nhs = append(nhs, p.NextHop)
		}
	}
	return nhs
}

// bulkSync is the number of pending prefixes from which the FIB reads the
// whole table back instead of each prefix.
const bulkSync = 64

// readTable reads every path of the families the batch has prefixes of.
func readTable(ctx context.Context, client api.GoBgpServiceClient, batch map[netip.Prefix]bool) (map[netip.Prefix][]PathInfo, error) {
	fams := map[bool]bool{}
	for p := range batch {
		fams[is6(p.Addr())] = true
	}
	out := map[netip.Prefix][]PathInfo{}
	for v6 := range fams {
		fam := familyV4
		if v6 {
			fam = familyV6
		}
		stream, err := client.ListPath(ctx, &api.ListPathRequest{TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam})
		if err != nil {
			return nil, err
		}
		for {
			r, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				return nil, err
			}
			for _, path := range r.GetDestination().GetPaths() {
				pi := DescribePath(r.GetDestination().GetPrefix(), path)
				out[pi.Prefix] = append(out[pi.Prefix], pi)
			}
		}
	}
	return out, nil
}

func (f *fib) sync(ctx context.Context, client api.GoBgpServiceClient, p netip.Prefix, multipath bool) error {
	paths, err := ListPaths(ctx, client, p)
	if err != nil {
		return err
	}
	return f.apply(p, paths, multipath)
}

// apply makes the kernel's route to p what its paths say: the best path's
// next hop, the ECMP set, or none.
func (f *fib) apply(p netip.Prefix, paths []PathInfo, multipath bool) error {
	MarkMultipath(paths, multipath)
	nhs := NextHops(paths)
	if len(nhs) == 0 {
		err := f.routes.RouteDel(&netlink.Route{Dst: ipNet(p), Protocol: RouteProtocol, Priority: RouteMetric})
		if err != nil && !errors.Is(err, unix.ESRCH) && !errors.Is(err, unix.ENOENT) {
			return err
		}
		return nil
	}
	r := &netlink.Route{Dst: ipNet(p), Protocol: RouteProtocol, Priority: RouteMetric}
	if len(nhs) == 1 {
		r.Gw = net.IP(nhs[0].AsSlice())
	} else {
		for _, nh := range nhs {
			r.MultiPath = append(r.MultiPath, &netlink.NexthopInfo{Gw: net.IP(nh.AsSlice())})
		}
	}
	if err := f.routes.RouteReplace(r); err != nil {
		return err
	}
	f.log.Debug("route installed", "prefix", p, "next_hops", nhs)
	return nil
}

// flush removes every route the agent installed (proto bgp) and returns how
// many there were.
func (f *fib) flush() int { return flushWith(f.h, f.log) }

// flushRoutes is flush for the supervisor, which has no fib.
func flushRoutes(log *slog.Logger) int {
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		log.Error("flush routes", "err", err)
		return 0
	}
	defer h.Close()
	return flushWith(h, log)
}

func flushWith(h *netlink.Handle, log *slog.Logger) int {
	n := 0
	for _, fam := range []int{netlink.FAMILY_V4, netlink.FAMILY_V6} {
		routes, err := kernel.Dump(func() ([]netlink.Route, error) {
			return h.RouteListFiltered(fam, &netlink.Route{Protocol: RouteProtocol}, netlink.RT_FILTER_PROTOCOL)
		})
		if err != nil {
			log.Error("list bgp routes", "err", err)
			continue
		}
		for _, r := range routes {
			if err := h.RouteDel(&r); err == nil {
				n++
			}
		}
	}
	return n
}

// ListPaths reads every path of a prefix from the global RIB.
func ListPaths(ctx context.Context, client api.GoBgpServiceClient, p netip.Prefix) ([]PathInfo, error) {
	fam := familyV4
	if is6(p.Addr()) {
		fam = familyV6
	}
	stream, err := client.ListPath(ctx, &api.ListPathRequest{
		TableType: api.TableType_TABLE_TYPE_GLOBAL, Family: fam,
		Prefixes: []*api.TableLookupPrefix{{Prefix: p.String(), Type: api.TableLookupPrefix_TYPE_EXACT}},
	})
	if err != nil {
		return nil, err
	}
	var out []PathInfo
	for {
		r, err := stream.Recv()
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, io.EOF) {
				return out, nil
			}
			return out, err
		}
		for _, path := range r.GetDestination().GetPaths() {
			out = append(out, DescribePath(r.GetDestination().GetPrefix(), path))
		}
	}
}

func ipNet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: net.IP(p.Addr().AsSlice()), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}
