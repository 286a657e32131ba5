package netem_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/erlab-dev/erlab/lab/netem"
)

const impaired = `name: imp
topology:
  nodes:
    ce:
      interfaces:
        eth1: {addresses: [10.0.0.1/30]}
        eth2: {addresses: [10.0.1.1/30], impair: {loss: 2%}}
    pe:
      interfaces:
        eth1: {addresses: [10.0.0.2/30]}
        eth2: {addresses: [10.0.1.2/30]}
        eth3: {addresses: [10.0.2.1/30]}
    msee:
      interfaces:
        eth1: {addresses: [10.0.2.2/30]}
  links:
    - endpoints: ["ce:eth1", "pe:eth1"]
      impair: { delay: 20ms, jitter: 2ms, loss: 0.5%, corrupt: 0.1%, duplicate: 0.1%, reorder: 1%, rate: 100mbit }
    - endpoints: ["ce:eth2", "pe:eth2"]
      impair: { delay: 5ms }
    - endpoints: ["pe:eth3", "msee:eth1"]
      impair: { a: { rate: 50mbit }, b: { delay: 5ms } }
`

func TestImpairModel(t *testing.T) {
	top, err := labtest.ParseFile(t, impaired, nil)
	if err != nil {
		t.Fatal(err)
	}
	get := func(node, iface string) *netem.Params { return netem.Of(top.Node(node).Interface(iface)) }
	full := &netem.Params{Delay: 20 * time.Millisecond, Jitter: 2 * time.Millisecond, Loss: 0.5, Corrupt: 0.1, Duplicate: 0.1, Reorder: 1, Rate: 100e6}
	for _, c := range []struct {
		node, iface string
		want        *netem.Params
	}{
		{"ce", "eth1", full}, {"pe", "eth1", full}, // both directions
		{"ce", "eth2", &netem.Params{Loss: 2}}, // the interface's own wins over its link's
		{"pe", "eth2", &netem.Params{Delay: 5 * time.Millisecond}},
		{"pe", "eth3", &netem.Params{Rate: 50e6}}, // per end: a
		{"msee", "eth1", &netem.Params{Delay: 5 * time.Millisecond}},
	} {
		if diff := cmp.Diff(c.want, get(c.node, c.iface)); diff != "" {
			t.Errorf("%s:%s (-want +got):\n%s", c.node, c.iface, diff)
		}
	}
	if !get("pe", "eth3").RateOnly() || get("ce", "eth1").RateOnly() {
		t.Errorf("a rate alone is tbf's, anything else netem's")
	}
	if got := full.String(); got != "delay 20ms jitter 2ms loss 0.5% corrupt 0.1% duplicate 0.1% reorder 1% rate 100mbit" {
		t.Errorf("String: %q", got)
	}
}

func TestImpairErrors(t *testing.T) {
	for _, c := range []struct{ impair, want string }{
		{`{delay: 20 ms}`, `lab.yml:8:15: links[0]: impair: delay "20 ms": a duration from 0 to 1m, such as 20ms`},
		{`{delay: -1ms}`, `delay "-1ms": a duration from 0 to 1m`},
		{`{loss: 150%}`, `loss "150%": a percentage from 0 to 100, such as 0.5%`},
		{`{loss: lots}`, `loss "lots": a percentage`},
		{`{rate: 100mbits}`, `rate "100mbits": a rate such as 100mbit`},
		{`{rate: 0mbit}`, `rate "0mbit": a rate such as 100mbit`},
		{`{jitter: 2ms}`, `jitter 2ms needs a delay`},
		{`{reorder: 1%}`, `reorder 1% needs a delay`},
		{`{delay: 5ms, a: {rate: 1mbit}}`, `links[0]: impair: give the impairment of both directions (delay:, loss:, ...) or one per end (a:, b:), not both`},
		{`{a: {jitter: 1ms}}`, `links[0]: impair: a: jitter 1ms needs a delay`},
		{`{b: {loss: 101}}`, `links[0]: impair: b: loss "101"`},
		{`{delai: 5ms}`, `delai`},
	} {
		src := `name: e
topology:
  nodes:
    a: {}
    b: {}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
      impair: ` + c.impair + "\n"
		_, err := labtest.ParseFile(t, src, nil)
		problems := labtest.Problems(err)
		if len(problems) != 1 || !strings.Contains(problems[0], c.want) {
			t.Errorf("impair: %s: want one problem with %q, got %q", c.impair, c.want, problems)
		}
	}
	_, err := labtest.ParseFile(t, `name: e
topology:
  nodes:
    a: {interfaces: {lo: {impair: {delay: 1ms}}}}
`, nil)
	if p := labtest.Problems(err); len(p) != 1 || !strings.Contains(p[0], `interface "lo": impair: the loopback carries no link`) {
		t.Errorf("impair on lo: %q", p)
	}
}

func TestParseRate(t *testing.T) {
	for in, want := range map[string]uint64{"100mbit": 100e6, "1gbit": 1e9, "64kbit": 64e3, "500bit": 500, "1.5mbit": 1.5e6, "10mbps": 80e6, "1kbps": 8e3, " 2Mbit ": 2e6} {
		if got, err := netem.ParseRate(in); err != nil || got != want {
			t.Errorf("ParseRate(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, bps := range []uint64{100e6, 1e9, 64e3, 1500, 1_500_000} {
		if got, err := netem.ParseRate(netem.FormatRate(bps)); err != nil || got != bps {
			t.Errorf("FormatRate(%d) = %q does not read back: %d %v", bps, netem.FormatRate(bps), got, err)
		}
	}
}

// The plan of an impaired lab, through the recording fake: each impaired
// end gets its qdisc after its interfaces, netem or tbf as tc would say.
func TestImpairPlan(t *testing.T) {
	top, err := labtest.ParseFile(t, impaired, nil)
	if err != nil {
		t.Fatal(err)
	}
	rec := &kernel.Recorder{}
	if err := lab.Deploy(context.Background(), top, lab.Options{Ops: rec, StateRoot: t.TempDir(), Workers: 1}); err != nil {
		t.Fatal(err)
	}
	got := rec.String()
	for _, want := range []string{
		"qdisc replace dev eth1 root netem delay 20ms 2ms loss 0.5% corrupt 0.1% duplicate 0.1% reorder 1% rate 100mbit limit 1000",
		"qdisc replace dev eth2 root netem loss 2% limit 1000",
		"qdisc replace dev eth2 root netem delay 5ms limit 1000",
		"qdisc replace dev eth3 root tbf rate 50mbit burst 25000 latency 50ms",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "qdisc replace"); n != 6 {
		t.Errorf("%d qdiscs in the plan, want 6:\n%s", n, got)
	}
	// In each namespace, after its addresses.
	lines := strings.Split(got, "\n")
	for _, ns := range []string{"erlab-imp.ce", "erlab-imp.pe", "erlab-imp.msee"} {
		lastAddr, firstQdisc := -1, len(lines)
		for k, line := range lines {
			if strings.Contains(line, "-n "+ns+" addr replace") {
				lastAddr = k
			}
			if strings.Contains(line, "-n "+ns+" qdisc") {
				firstQdisc = min(firstQdisc, k)
			}
		}
		if lastAddr < 0 || firstQdisc < lastAddr {
			t.Errorf("%s: a qdisc (line %d) before its addresses (line %d)", ns, firstQdisc, lastAddr)
		}
	}
}

func TestParseFlags(t *testing.T) {
	p, err := netem.ParseFlags(netem.ParamsSpec{Delay: "20ms", Loss: "1%"})
	if err != nil || p != (netem.Params{Delay: 20 * time.Millisecond, Loss: 1}) {
		t.Errorf("ParseFlags: %+v %v", p, err)
	}
	if _, err := netem.ParseFlags(netem.ParamsSpec{Jitter: "x", Loss: "200"}); err == nil ||
		!strings.Contains(err.Error(), `jitter "x"`) || !strings.Contains(err.Error(), `loss "200"`) {
		t.Errorf("ParseFlags of two bad values: %v", err)
	}
}
