package netem_test

import (
	"context"
	"encoding/json"
	"math"
	"regexp"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/erlab-dev/erlab/lab/netem"
)

// rtts pings dst from node n times, 50 ms apart, and returns the round
// trips in milliseconds, sorted.
func rtts(t *testing.T, l *lab.Lab, node, dst string, n int) []float64 {
	t.Helper()
	out := labtest.Exec(t, l, node, "ping", "-n", "-c", strconv.Itoa(n), "-i", "0.05", "-W", "2", dst)
	var ms []float64
	for _, m := range regexp.MustCompile(`time=([0-9.]+) ms`).FindAllStringSubmatch(out, -1) {
		v, _ := strconv.ParseFloat(m[1], 64)
		ms = append(ms, v)
	}
	if len(ms) < n*9/10 {
		t.Fatalf("%s → %s: %d of %d pings answered:\n%s", node, dst, len(ms), n, out)
	}
	slices.Sort(ms)
	return ms
}

func median(v []float64) float64 { return v[len(v)/2] }

// impairments reads inspect's impairment section, by NODE:IFACE.
func impairments(t *testing.T, l *lab.Lab) map[string]netem.Info {
	t.Helper()
	info := labtest.Inspect(t, l)
	out := map[string]netem.Info{}
	infos, _ := info.Features[netem.Name].([]netem.Info)
	for _, in := range infos {
		out[in.Node+":"+in.Interface] = in
	}
	return out
}

// Impairments declared in the topology, measured with independent tools
// (ping, iperf3): a delay on a link adds twice itself to the round trip,
// a per-end delay once; inspect reads them back from the kernel; loss set
// on the live lab drops within a binomial bound; --clear restores the
// baseline.
func TestIntegrationImpair(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, netem.KernelNetem, netem.KernelTBF)
	const delay = 25 * time.Millisecond
	top := labtest.Parse(t, `name: imp
topology:
  nodes:
    a:
      interfaces:
        eth1: {addresses: [10.0.0.1/30]}
        eth2: {addresses: [10.0.1.1/30]}
    b:
      interfaces:
        eth1: {addresses: [10.0.0.2/30]}
        eth2: {addresses: [10.0.1.2/30]}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
      impair: {delay: 25ms}
    - endpoints: ["a:eth2", "b:eth2"]
      impair: {a: {delay: 40ms}}
`)
	l := labtest.Deploy(t, top)
	ctx := context.Background()

	got := impairments(t, l)
	for end, want := range map[string]time.Duration{"a:eth1": delay, "b:eth1": delay, "a:eth2": 40 * time.Millisecond} {
		if in, ok := got[end]; !ok || in.Qdisc != "netem" || in.Delay != want {
			t.Errorf("inspect %s: %+v, want netem delay %s", end, in, want)
		}
	}
	if in, ok := got["b:eth2"]; ok {
		t.Errorf("inspect b:eth2 (the unimpaired direction): %+v", in)
	}

	// Both directions: the round trip carries the delay twice; the
	// per-end one once.
	both := rtts(t, l, "a", "10.0.0.2", 20)
	if lo := float64(2 * delay / time.Millisecond); both[0] < lo {
		t.Errorf("round trip %.1f ms under twice the one-way delay (%.0f ms)", both[0], lo)
	}
	one := rtts(t, l, "a", "10.0.1.2", 20)
	if m := median(one); m < 40 || m > 40+float64(delay/time.Millisecond) {
		t.Errorf("per-end delay of 40 ms: median round trip %.1f ms, want 40 ms and not twice", m)
	}

	// --clear: the baseline back, and the difference is the delay, twice.
	if err := netem.Impair(ctx, l, "a", "eth1", netem.Params{}); err != nil {
		t.Fatal(err)
	}
	if err := netem.Impair(ctx, l, "b", "eth1", netem.Params{}); err != nil {
		t.Fatal(err)
	}
	if in, ok := impairments(t, l)["a:eth1"]; ok {
		t.Errorf("inspect after clearing a:eth1: %+v", in)
	}
	base := rtts(t, l, "a", "10.0.0.2", 20)
	added := median(both) - median(base)
	if want := float64(2 * delay / time.Millisecond); added < want-3 || added > want+10 {
		t.Errorf("delay %s both ways added %.1f ms to the median round trip (%.1f → %.1f ms), want %.0f", delay, added, median(base), median(both), want)
	}
	t.Logf("delay %s both ways: median round trip %.1f ms, cleared %.1f ms (added %.1f ms); per end 40ms: %.1f ms", delay, median(both), median(base), added, median(one))

	// Loss on one end, live: the echo requests lost within a binomial
	// bound (4.5 standard deviations).
	const n, p = 1000, 0.10
	if err := netem.Impair(ctx, l, "a", "eth1", netem.Params{Loss: 100 * p}); err != nil {
		t.Fatal(err)
	}
	out, _, _ := labtest.TryExec(l, "a", "ping", "-n", "-q", "-c", strconv.Itoa(n), "-i", "0.002", "-W", "2", "10.0.0.2")
	m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("ping:\n%s", out)
	}
	sent, recv := atoi(m[1]), atoi(m[2])
	lost, sd := sent-recv, math.Sqrt(n*p*(1-p))
	if sent != n || math.Abs(float64(lost)-n*p) > 4.5*sd {
		t.Errorf("loss %.0f%%: %d of %d lost, want %.0f ± %.0f", 100*p, lost, sent, n*p, 4.5*sd)
	}
	t.Logf("loss %.0f%%: %d of %d lost (bound %.0f ± %.0f)", 100*p, lost, sent, n*p, 4.5*sd)
}

func atoi(s string) int { v, _ := strconv.Atoi(s); return v }

// A rate alone is a token bucket (tbf): iperf3's TCP throughput within 10 %
// of it, and far above it once cleared. The host kernel has tbf, so this
// runs on the host too.
func TestIntegrationImpairRate(t *testing.T) {
	labtest.Integration(t)
	labtest.RequireFeatures(t, netem.KernelTBF)
	labtest.RequireTool(t, "iperf3")
	const rate = 20e6
	top := labtest.Parse(t, `name: rate
topology:
  nodes:
    a: {interfaces: {eth1: {addresses: [10.0.0.1/30]}}}
    b: {interfaces: {eth1: {addresses: [10.0.0.2/30]}}}
  links:
    - endpoints: ["a:eth1", "b:eth1"]
      impair: {rate: 20mbit}
`)
	l := labtest.Deploy(t, top)
	if in := impairments(t, l)["a:eth1"]; in.Qdisc != "tbf" || in.Rate != rate {
		t.Errorf("inspect a:eth1: %+v, want tbf at 20mbit", in)
	}
	labtest.Exec(t, l, "b", "iperf3", "-s", "-D") // destroy stops it
	got := throughput(t, l)
	if r := got / rate; r < 0.9 || r > 1.1 {
		t.Errorf("rate 20mbit: iperf3 measured %.1f Mbit/s (%.2f of the rate), want within 10 %%", got/1e6, r)
	}
	for _, end := range []string{"a", "b"} {
		if err := netem.Impair(context.Background(), l, end, "eth1", netem.Params{}); err != nil {
			t.Fatal(err)
		}
	}
	clear := throughput(t, l)
	if clear < 3*rate {
		t.Errorf("cleared: iperf3 measured %.1f Mbit/s, want well above the 20 Mbit/s limit", clear/1e6)
	}
	t.Logf("rate 20mbit: %.1f Mbit/s (%.3f of it); cleared: %.0f Mbit/s", got/1e6, got/rate, clear/1e6)
}

// throughput runs iperf3 from a to b (TCP, 4 s after a 1 s warm-up) and
// returns what b received, in bits per second. iperf3's server takes a
// moment to be ready for the next test after one ends, and then answers
// "the server is busy" (in the JSON, at times with exit status 0): that is
// retried, like a server not yet listening.
func throughput(t *testing.T, l *lab.Lab) float64 {
	t.Helper()
	var out string
	var r struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
		Error string `json:"error"`
	}
	ok := func() bool {
		s, code, _ := labtest.TryExec(l, "a", "iperf3", "-c", "10.0.0.2", "-t", "4", "-O", "1", "-J")
		out = s
		r.Error, r.End.SumReceived.BitsPerSecond = "", 0
		return code == 0 && json.Unmarshal([]byte(s), &r) == nil && r.Error == "" && r.End.SumReceived.BitsPerSecond > 0
	}
	for deadline := time.Now().Add(20 * time.Second); !ok(); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("iperf3 from a to b: no test ran within 20s; last answer:\n%s", out)
		}
	}
	return r.End.SumReceived.BitsPerSecond
}
