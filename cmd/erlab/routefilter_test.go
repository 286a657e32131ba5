package main

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/bgp"
	"github.com/erlab-dev/erlab/lab/labtest"
)

// A plain topology's route filter (no expressroute: declaration): an MSEE
// whose export to the customer matches communities, the filter detached at
// deploy, and Microsoft's network behind the MSEE originating two services.
const routeFilterLab = `name: rf
topology:
  nodes:
    svc:
      kind: router
      interfaces:
        eth1: {addresses: [10.0.0.1/30]}
      bgp:
        asn: 8075
        networks: [{prefix: 40.96.0.0/13, communities: ["12076:5010"]}, {prefix: 52.112.0.0/14, communities: ["12076:5030"]}]
        neighbors: [{address: 10.0.0.2, remote-as: 12076}]
    msee:
      kind: router
      interfaces:
        eth1: {addresses: [10.0.0.2/30]}
        eth2: {addresses: [203.0.113.2/30]}
      bgp:
        asn: 12076
        neighbors:
          - {address: 10.0.0.1, remote-as: 8075}
          - {address: 203.0.113.1, remote-as: 65010, export: {match-communities: []}}
    ce:
      kind: router
      interfaces:
        eth1: {addresses: [203.0.113.1/30]}
      bgp: {asn: 65010, neighbors: [{address: 203.0.113.2, remote-as: 12076}]}
  links:
    - endpoints: [svc:eth1, msee:eth1]
    - endpoints: [msee:eth2, ce:eth1]
  route-filters:
    - {circuit: c1, communities: ["12076:5010"], attached: false, sessions: ["msee:203.0.113.1"]}
`

// erlab route-filter attach and detach, as a user runs them on a deployed
// lab: the customer gets the route of the service the filter lists, and
// not the other's, then nothing once it is detached; a circuit without a
// filter is refused, naming those that have one.
func TestIntegrationCLIRouteFilter(t *testing.T) {
	labtest.Integration(t)
	file, name := cliLab(t, routeFilterLab, "rf", "rf")
	if _, stderr, code := run(t, "deploy", "-t", file, "--wait"); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, stderr)
	}
	opts := labtest.Options(t)
	opts.StateRoot = os.Getenv(lab.StateRootEnv) // where cliLab pointed the CLI
	l, err := lab.OpenName(name, opts)
	if err != nil {
		t.Fatal(err)
	}
	ceHas := func() []string {
		routes, err := bgp.Routes(context.Background(), l, "ce", true)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, r := range routes {
			out = append(out, r.Prefix.String())
		}
		return out
	}
	if got := ceHas(); len(got) != 0 {
		t.Errorf("ce has %v with the route filter detached", got)
	}
	out, stderr, code := run(t, "route-filter", "attach", "-t", file, "c1")
	if code != 0 || !strings.Contains(out, "12076:5010") {
		t.Fatalf("route-filter attach: exit %d\n%s%s", code, out, stderr)
	}
	labtest.Eventually(t, 10*time.Second, "ce gets Exchange Online's route, and only it", func() bool {
		got := ceHas()
		return len(got) == 1 && got[0] == "40.96.0.0/13"
	})
	if _, stderr, code := run(t, "route-filter", "detach", "-t", file, "c1"); code != 0 {
		t.Fatalf("route-filter detach: exit %d\n%s", code, stderr)
	}
	labtest.Eventually(t, 10*time.Second, "ce's routes gone with the filter", func() bool { return len(ceHas()) == 0 })
	if _, stderr, code := run(t, "route-filter", "attach", "-t", file, "c2"); code != 1 || !strings.Contains(stderr, `circuit "c2" has no route filter; circuits that do: c1`) {
		t.Errorf("attach to a circuit without a filter: exit %d\n%s", code, stderr)
	}
}
