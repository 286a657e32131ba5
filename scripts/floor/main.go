// Command floor is the kernel floor scripts/bench sets erlab's deploy and
// destroy beside: the time a minimal loop takes to make N network
// namespaces and the N−1 veth pairs of a chain between them, with the
// library calls erlab's deploy makes for them (kernel.NetNSAdd; a netlink
// handle in one end's namespace adding a veth whose peer is created
// straight into the other's), on the same number of workers, and nothing
// else; then to delete the namespaces (kernel.NetNSDel), which takes the
// links with them. It prints both times in seconds: deploy destroy.
//
// Usage: floor -n N [-workers W] [-prefix P]      (root)
package main

import (
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sync/errgroup"

	"github.com/erlab-dev/erlab/lab/kernel"
)

func main() {
	n := flag.Int("n", 1000, "namespaces")
	workers := flag.Int("workers", 4*runtime.NumCPU(), "workers: erlab deploy's default")
	prefix := flag.String("prefix", "erlab-floor.", "namespace name prefix")
	configure := flag.Bool("configure", false, "also set the loopbacks up, address each veth end and set it up")
	flag.Parse()
	if err := run(*n, *workers, *prefix, *configure); err != nil {
		fmt.Fprintln(os.Stderr, "floor:", err)
		os.Exit(1)
	}
}

func run(n, workers int, prefix string, configure bool) error {
	name := func(i int) string { return fmt.Sprintf("%sn%d", prefix, i) }
	defer func() { // whatever happened, leave nothing behind
		for i := range n {
			kernel.NetNSDel(name(i))
		}
	}()
	each := func(count int, fn func(i int) error) error {
		var g errgroup.Group
		g.SetLimit(workers)
		for i := range count {
			g.Go(func() error { return fn(i) })
		}
		return g.Wait()
	}
	start := time.Now()
	if err := each(n, func(i int) error { return kernel.NetNSAdd(name(i)) }); err != nil {
		return err
	}
	if err := each(n-1, func(i int) error {
		h, err := kernel.RouteHandle(name(i))
		if err != nil {
			return err
		}
		defer h.Close()
		peer, err := kernel.Open(name(i + 1))
		if err != nil {
			return err
		}
		defer peer.Close()
		return h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "eth2", Index: 100000 + i}, PeerName: "eth1", PeerNamespace: netlink.NsFd(peer)})
	}); err != nil {
		return err
	}
	if configure {
		if err := each(n, func(i int) error { return configureNode(name(i), i, n) }); err != nil {
			return err
		}
	}
	deploy := time.Since(start)
	start = time.Now()
	if err := each(n, func(i int) error { return kernel.NetNSDel(name(i)) }); err != nil {
		return err
	}
	fmt.Printf("%.3f %.3f\n", deploy.Seconds(), time.Since(start).Seconds())
	return nil
}

// configureNode sets node i's loopback up, and addresses its veth ends
// (eth1 towards i-1, eth2 towards i+1: a /31 per link) and sets them up.
func configureNode(ns string, i, n int) error {
	h, err := kernel.RouteHandle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	lo, err := h.LinkByName("lo")
	if err != nil {
		return err
	}
	if err := h.LinkSetUp(lo); err != nil {
		return err
	}
	end := func(ifname string, link, side int) error {
		l, err := h.LinkByName(ifname)
		if err != nil {
			return err
		}
		ip := netip.AddrFrom4([4]byte{10, byte(link >> 15), byte(link >> 7), byte(link<<1) + byte(side)})
		if err := h.AddrReplace(l, &netlink.Addr{IPNet: kernel.IPNet(netip.PrefixFrom(ip, 31))}); err != nil {
			return err
		}
		return h.LinkSetUp(l)
	}
	if i > 0 {
		if err := end("eth1", i-1, 1); err != nil {
			return err
		}
	}
	if i < n-1 {
		return end("eth2", i, 0)
	}
	return nil
}
