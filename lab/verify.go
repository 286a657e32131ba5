package lab

import (
	"context"
	"fmt"
	"net/netip"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/erlab-dev/erlab/lab/feature"
	"github.com/erlab-dev/erlab/lab/topo"
)

// Reach is one neighbour check of VerifyConnectivity.
type Reach struct {
	From  string        `json:"from"` // node:iface
	To    string        `json:"to"`   // node:iface
	Addr  string        `json:"address"`
	OK    bool          `json:"ok"`
	RTT   time.Duration `json:"rtt_ns,omitempty"`
	Error string        `json:"error,omitempty"`
}

var rttRe = regexp.MustCompile(`time=([0-9.]+) ms`)

// VerifyConnectivity checks what the topology claims about its subnets: for
// every two nodes with addresses in one subnet, the first pings the second's
// address from its own (one echo, one second to answer), IPv4 and IPv6. It
// proves each link and VLAN carries traffic, whatever the routes say.
func VerifyConnectivity(ctx context.Context, t *topo.Topology, opts Options) ([]Reach, error) {
	return FromTopology(t, opts).VerifyConnectivity(ctx)
}

// VerifyConnectivity is the package function's, on the lab.
func (l *Lab) VerifyConnectivity(ctx context.Context) ([]Reach, error) {
	t, err := l.needTopology("verify connectivity")
	if err != nil {
		return nil, err
	}
	opts := &l.opts
	type end struct {
		node, iface string
		p           netip.Prefix
	}
	var ends []end
	for _, n := range t.Nodes {
		for _, i := range n.Interfaces {
			if i.Type == topo.TypeLoopback {
				continue
			}
			for _, p := range i.Addresses {
				ends = append(ends, end{n.Name, i.Name, p})
			}
		}
	}
	var checks []Reach
	var srcs []string
	for x, a := range ends {
		for _, b := range ends[x+1:] {
			if a.node != b.node && a.p.Masked() == b.p.Masked() {
				checks = append(checks, Reach{From: a.node + ":" + a.iface, To: b.node + ":" + b.iface, Addr: b.p.Addr().String()})
				srcs = append(srcs, a.p.Addr().String())
			}
		}
	}
	var mu sync.Mutex
	var p feature.Plan
	title := fmt.Sprintf("Checking %d neighbours", len(checks))
	for i := range checks {
		c := &checks[i]
		p.Add(feature.Step{ID: fmt.Sprint(i), Group: title, Run: func(ctx context.Context) error {
			node, _, _ := strings.Cut(c.From, ":")
			var out strings.Builder
			code, err := l.Exec(ctx, node, []string{"ping", "-n", "-c1", "-W1", "-I", srcs[i], c.Addr}, nil, &out, &out)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				c.Error = err.Error()
			case code != 0:
				c.Error = "no answer"
			default:
				c.OK = true
				if m := rttRe.FindStringSubmatch(out.String()); m != nil {
					if d, err := time.ParseDuration(m[1] + "ms"); err == nil {
						c.RTT = d
					}
				}
			}
			return nil
		}})
	}
	err = p.Run(ctx, opts.workers(), opts.status())
	return checks, err
}
