package ike

import (
	"context"
	"fmt"
	"time"

	"github.com/strongswan/govici/vici"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/ipsec"
	"github.com/erlab-dev/erlab/lab/probe"
)

// RekeyReport says what a forced rekey did and what it cost.
type RekeyReport struct {
	Tunnel string `json:"tunnel"`
	Node   string `json:"node"`
	What   string `json:"what"` // CHILD SA or IKE SA
	// SPIs of the CHILD SA in use before and after (out, as this node
	// sends).
	SPIBefore uint32 `json:"spi_before"`
	SPIAfter  uint32 `json:"spi_after"`
	// Took is from the rekey request to charon's event that the new SA is
	// in place (child-rekey, ike-rekey).
	Took time.Duration `json:"took_ns"`
	// Probe is the stream sent through the tunnel meanwhile; nil when the
	// tunnel has no inner addresses to send it between.
	Probe *probe.Report `json:"probe,omitempty"`
}

// RekeyRate is the rate of the probe stream a rekey is measured with.
const RekeyRate = 100

// Rekey forces strongSwan to rekey an IKE tunnel's CHILD SA (or its
// IKE SA) from node's end, while a probe stream crosses the tunnel, and
// waits until the new SA carries the traffic. strongSwan makes the new SA
// before it deletes the old one, so nothing should be lost.
func Rekey(ctx context.Context, lab feature.Lab, node, name string, ikeSA bool) (*RekeyReport, error) {
	return rekey(ctx, lab, node, name, ikeSA, true)
}

// rekey is Rekey, with its own probe stream or (measure false) none: a
// drill's flows measure.
func rekey(ctx context.Context, lab feature.Lab, node, name string, ikeSA, measure bool) (*RekeyReport, error) {
	t := lab.Topology()
	if t == nil {
		return nil, fmt.Errorf("lab %s: rekeying needs its topology file", lab.Name())
	}
	tu, err := tunnelOf(t, name)
	if err != nil {
		return nil, err
	}
	if _, _, ok := tu.End(node); !ok {
		return nil, fmt.Errorf("node %s is not an end of tunnel %s (%s, %s)", node, name, tu.A.Node, tu.B.Node)
	}
	in, ok := conns(lab, node)
	if !ok {
		return nil, fmt.Errorf("tunnel %s: node %s runs no charon (is the lab deployed?)", name, node)
	}
	rep := &RekeyReport{Tunnel: name, Node: node, What: "CHILD SA"}
	if ikeSA {
		rep.What = "IKE SA"
	}
	spi := func() uint32 {
		status, err := Status(in)
		if err != nil {
			return 0
		}
		for _, c := range status {
			if c.Name == name && len(c.IKE) > 0 && len(c.IKE[0].Children) > 0 && c.IKE[0].Children[0].State == "INSTALLED" {
				return c.IKE[0].Children[0].SPIOut
			}
		}
		return 0
	}
	rep.SPIBefore = spi()

	var probeDone chan error
	stop := func() {}
	if src, dst, ok := ipsec.FlowAddrs(t, tu); ok && measure {
		from := tu.A.Node
		if node == tu.B.Node {
			from, dst = tu.B.Node, src
		}
		pctx, cancel := context.WithCancel(ctx)
		stop = cancel
		probeDone = make(chan error, 1)
		go func() {
			pr, err := probe.Between(pctx, t, from, dst.String(), probe.Config{Rate: RekeyRate, Duration: 10 * time.Minute, Port: 7012})
			rep.Probe = &pr
			probeDone <- err
		}()
		// A second of the stream before the rekey, to compare with.
		sleep(ctx, time.Second)
	}
	finish := func() error {
		stop()
		if probeDone != nil {
			return <-probeDone
		}
		return nil
	}
	fail := func(err error) (*RekeyReport, error) {
		finish()
		return nil, err
	}
	// Subscribed before the rekey starts, so that its event cannot be
	// missed.
	event := "child-rekey"
	if ikeSA {
		event = "ike-rekey"
	}
	wctx, cancel := context.WithTimeout(ctx, rekeyTimeout)
	defer cancel()
	w, err := watch(wctx, in, name, event)
	if err != nil {
		return fail(fmt.Errorf("tunnel %s: %w", name, err))
	}
	defer w.Close()
	start := time.Now()
	if err := RekeySA(in, name, ikeSA); err != nil {
		return fail(err)
	}
	// charon raises the event once the new SA is installed (a CHILD SA)
	// or established with the CHILD SAs moved onto it (an IKE SA).
	if err := w.wait(wctx, func(ev vici.Event) bool { return ev.Name == event }); err != nil {
		return fail(fmt.Errorf("tunnel %s: no %s event %s after the rekey: %w", name, event, time.Since(start).Round(time.Millisecond), err))
	}
	rep.Took = time.Since(start)
	// The CHILD SA in use is the new one now (an IKE rekey keeps it): the
	// old one is REKEYED or DELETING. A look or two more in case listing
	// and event crossed.
	err = poll(wctx, 50*time.Millisecond, func() bool {
		rep.SPIAfter = spi()
		return rep.SPIAfter != 0 && (ikeSA || rep.SPIAfter != rep.SPIBefore)
	})
	if err != nil {
		return fail(fmt.Errorf("tunnel %s: no new CHILD SA in use within %s of the rekey", name, rekeyTimeout))
	}
	// A second more of the stream, on the new SA.
	if measure {
		sleep(ctx, time.Second)
	}
	return rep, finish()
}

// rekeyTimeout bounds Rekey's wait for the new SA.
const rekeyTimeout = 30 * time.Second

// poll calls cond every interval until it holds or ctx ends.
func poll(ctx context.Context, interval time.Duration, cond func() bool) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for !cond() {
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// sleep waits for d, or less when ctx ends first.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
