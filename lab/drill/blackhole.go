package drill

import (
	"errors"
	"fmt"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/kernel"
)

// A blackhole drops every frame a link carries, and changes nothing else:
// the carrier stays up at both ends, so only BFD or a hold timer notices.
// Each end of the link gets an nftables table of the netdev family in its
// node's namespace, with a chain on the interface's egress hook that
// drops everything it sends:
//
//	nft add table netdev erlab_blackhole_IFACE
//	nft add chain netdev erlab_blackhole_IFACE out '{ type filter hook egress device IFACE priority -500; }'
//	nft add rule netdev erlab_blackhole_IFACE out drop
//
// (An ingress chain beside it let frames through in one microVM run of
// five, the egress chains never: so each end drops at its egress.)
// Restore deletes the tables.

func blackholeTable(iface string) *nftables.Table {
	return &nftables.Table{Family: nftables.TableFamilyNetdev, Name: "erlab_blackhole_" + iface}
}

// nftIn opens an nftables connection inside the named namespace.
func nftIn(netns string) (*nftables.Conn, func(), error) {
	fd, err := kernel.Open(netns)
	if err != nil {
		return nil, nil, err
	}
	c, err := nftables.New(nftables.WithNetNSFd(int(fd)))
	if err != nil {
		fd.Close()
		return nil, nil, fmt.Errorf("nftables in %s: %w", netns, err)
	}
	return c, func() { c.CloseLasting(); fd.Close() }, nil
}

// blackhole puts a blackhole on an interface of the namespace.
func blackhole(netns, iface string) error {
	c, done, err := nftIn(netns)
	if err != nil {
		return err
	}
	defer done()
	tab := c.AddTable(blackholeTable(iface))
	prio := nftables.ChainPriority(-500) // before anything a user adds
	for _, h := range []struct {
		name string
		hook *nftables.ChainHook
	}{{"out", nftables.ChainHookEgress}} {
		ch := c.AddChain(&nftables.Chain{Name: h.name, Table: tab, Type: nftables.ChainTypeFilter, Hooknum: h.hook,
			Priority: &prio, Device: iface})
		c.AddRule(&nftables.Rule{Table: tab, Chain: ch, Exprs: []expr.Any{&expr.Counter{}, &expr.Verdict{Kind: expr.VerdictDrop}}})
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("blackhole %s: %w", iface, err)
	}
	return nil
}

// restore removes the blackhole of an interface; none is no error.
func restore(netns, iface string) error {
	c, done, err := nftIn(netns)
	if err != nil {
		return err
	}
	defer done()
	c.DelTable(blackholeTable(iface))
	if err := c.Flush(); err != nil && !isNoEnt(err) {
		return fmt.Errorf("restore %s: %w", iface, err)
	}
	return nil
}

func isNoEnt(err error) bool { return errors.Is(err, unix.ENOENT) }
