package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/erlab-dev/erlab/lab"
	"github.com/erlab-dev/erlab/lab/labtest"
	"github.com/erlab-dev/erlab/lab/web"
)

const eventsCLILab = `name: evcli
topology:
  nodes:
    a:
      interfaces:
        eth1: {addresses: [10.9.0.1/30]}
    b:
      interfaces:
        eth1: {addresses: [10.9.0.2/30]}
  links:
    - endpoints: [a:eth1, b:eth1]
`

// erlab events as a user runs it: the state first with --initial-state,
// then a link pulled from another command: the kernel's events at both
// ends and the journal's note, each a JSON object per line with the
// fields the README documents; the table has a line for each.
func TestIntegrationCLIEvents(t *testing.T) {
	labtest.Integration(t)
	if labtest.KernelTier() {
		t.Skip("the host tier runs it: the lab needs nothing this host's kernel lacks")
	}
	file, _ := cliLab(t, eventsCLILab, "evcli", "evcli")
	if _, stderr, code := run(t, "deploy", "-q", "-t", file); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, stderr)
	}
	type result struct {
		out, errs string
		code      int
	}
	stream := func(format string) (chan result, *labtest.SyncBuffer) {
		c := make(chan result, 1)
		var out labtest.SyncBuffer
		go func() {
			errs, code := runTo(&out, "events", "-t", file, "--format", format, "--initial-state", "--duration", "4s")
			c <- result{out.String(), errs, code}
		}()
		return c, &out
	}
	jsonOut, jbuf := stream("json")
	table, tbuf := stream("table")
	// Both watches have started once they have printed the state.
	labtest.Eventually(t, 3*time.Second, "both streams printing the initial state", func() bool {
		return strings.Contains(jbuf.String(), `"initial":true`) && strings.Contains(tbuf.String(), "(now)")
	})
	if _, stderr, code := run(t, "link", "down", "-t", file, "a:eth1"); code != 0 {
		t.Fatalf("link down: exit %d\n%s", code, stderr)
	}
	j := <-jsonOut
	if j.code != 0 {
		t.Fatalf("events --format json: exit %d\n%s", j.code, j.errs)
	}
	type ev struct {
		Time    time.Time `json:"time"`
		Node    string    `json:"node"`
		Kind    string    `json:"kind"`
		Object  string    `json:"object"`
		State   string    `json:"state"`
		Detail  string    `json:"detail"`
		Initial bool      `json:"initial"`
	}
	var got []ev
	for _, line := range strings.Split(strings.TrimSpace(j.out), "\n") {
		var e ev
		if err := json.Unmarshal([]byte(line), &e); err != nil || e.Time.IsZero() || e.Kind == "" || e.State == "" {
			t.Fatalf("not an event: %q (%v)", line, err)
		}
		got = append(got, e)
	}
	has := func(want ev) bool {
		for _, e := range got {
			if e.Node == want.Node && e.Kind == want.Kind && e.Object == want.Object && e.State == want.State && e.Initial == want.Initial {
				return true
			}
		}
		return false
	}
	for _, want := range []ev{
		{Node: "a", Kind: "interface", Object: "eth1", State: "up", Initial: true},
		{Node: "b", Kind: "address", Object: "10.9.0.2/30", State: "added", Initial: true},
		{Node: "a", Kind: "interface", Object: "eth1", State: "down"},
		{Node: "b", Kind: "interface", Object: "eth1", State: "no-carrier"},
		{Node: "a", Kind: "action", Object: "eth1", State: "link-down"},
		{Node: "a", Kind: "route", Object: "10.9.0.0/30", State: "removed"},
	} {
		if !has(want) {
			t.Errorf("no event %+v in:\n%s", want, j.out)
		}
	}
	tb := <-table
	if tb.code != 0 || !strings.HasPrefix(tb.out, "TIME ") {
		t.Fatalf("events (table): exit %d\n%s%s", tb.code, tb.out, tb.errs)
	}
	found := false
	for _, line := range strings.Split(tb.out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[1] == "a" && f[2] == "interface" && f[3] == "eth1" && f[4] == "down" {
			found = true
		}
	}
	if !found {
		t.Errorf("the table has no line for a:eth1 going down:\n%s", tb.out)
	}
}

// runTo runs the CLI in-process with its stdout to w, and returns its
// stderr and exit status.
func runTo(w io.Writer, args ...string) (string, int) {
	return runCtx(context.Background(), w, args...)
}

// runCtx is runTo until ctx is done, as a user's Ctrl-C ends a command.
func runCtx(ctx context.Context, w io.Writer, args ...string) (string, int) {
	var errb bytes.Buffer
	g := &globals{stdout: w, stderr: &errb}
	root := newRoot(g)
	root.SetArgs(args)
	code := report(&errb, root.ExecuteContext(ctx))
	return errb.String(), code
}

// readmeCommand finds the README block that starts with "$ erlab " and
// the command given, and returns its arguments (after erlab, the
// topology's path swapped for file) and the lines it shows printed.
func readmeCommand(t *testing.T, command, file string) (args, printed []string) {
	t.Helper()
	for _, b := range readmeBlocks(t) {
		first, rest, _ := strings.Cut(b.text, "\n")
		if first != "$ erlab "+command {
			continue
		}
		for _, a := range strings.Fields(command) {
			if strings.HasPrefix(a, "topologies/") {
				a = file
			}
			args = append(args, a)
		}
		return args, strings.Split(strings.TrimSpace(rest), "\n")
	}
	t.Fatalf("README.md has no block starting with $ erlab %s", command)
	return nil, nil
}

// TestIntegrationREADMEEventsAndServe runs the README's events and serve
// examples on er-bgp.yml: with ce1's primary link pulled, events prints a
// line for every one the README shows (node, kind, object, state; the
// times and details are the run's own); serve prints the address with
// its token as the README shows it, the page's lab has er-bgp's nodes,
// and an action with the token restores the link, one without is
// refused.
func TestIntegrationREADMEEventsAndServe(t *testing.T) {
	labtest.Integration(t)
	if labtest.KernelTier() {
		t.Skip("the host tier runs it: er-bgp.yml needs nothing this host's kernel lacks")
	}
	src, err := os.ReadFile("../../topologies/er-bgp.yml")
	if err != nil {
		t.Fatal(err)
	}
	file, name := cliLab(t, string(src), "er-bgp", "er-bgp")
	if _, stderr, code := run(t, "deploy", "-q", "--wait", "-t", file); code != 0 {
		t.Fatalf("deploy: exit %d\n%s", code, stderr)
	}

	args, shown := readmeCommand(t, "events -t topologies/er-bgp.yml", file)
	if len(shown) < 3 || !strings.HasPrefix(shown[0], "TIME ") {
		t.Fatalf("the README's events example shows no table: %q", shown)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out labtest.SyncBuffer
	done := make(chan int, 1)
	go func() {
		_, code := runCtx(ctx, &out, args...)
		done <- code
	}()
	labtest.Eventually(t, 5*time.Second, "events printing its header", func() bool { return strings.HasPrefix(out.String(), "TIME ") })
	// The watch has subscribed once it prints the header; the pull is the
	// README's first line.
	if _, stderr, code := run(t, "link", "down", "-t", file, "ce1:eth1"); code != 0 {
		t.Fatalf("link down: exit %d\n%s", code, stderr)
	}
	key := func(line string) string {
		f := strings.Fields(line)
		if len(f) < 5 {
			return ""
		}
		return strings.Join(f[1:5], " ")
	}
	missing := func() []string {
		seen := map[string]bool{}
		for _, l := range strings.Split(out.String(), "\n") {
			seen[key(l)] = true
		}
		var miss []string
		for _, l := range shown[1:] {
			if !seen[key(l)] {
				miss = append(miss, key(l))
			}
		}
		return miss
	}
	// Polled, not Eventually: a timeout says which lines are missing.
	for deadline := time.Now().Add(15 * time.Second); len(missing()) > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("events ended with exit %d", code)
	}
	if m := missing(); len(m) > 0 {
		t.Errorf("events printed no line for %q:\n%s", m, out.String())
	}

	args, shown = readmeCommand(t, "serve -t topologies/er-bgp.yml", file)
	// Any free port: the README's is the default, which may be taken here.
	args = append(args, "--listen", "127.0.0.1:0")
	want := regexp.MustCompile(`^erlab: lab (\S+) at http://127\.0\.0\.1:(\d+)/\?token=([0-9a-f]{32})$`)
	if len(shown) != 1 || !strings.HasPrefix(shown[0], "erlab: lab er-bgp at http://127.0.0.1:8480/?token=") {
		t.Fatalf("the README's serve example shows %q", shown)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	out = labtest.SyncBuffer{}
	go func() {
		_, code := runCtx(ctx, &out, args...)
		done <- code
	}()
	labtest.Eventually(t, 5*time.Second, "serve printing its address", func() bool { return strings.Contains(out.String(), "\n") })
	m := want.FindStringSubmatch(strings.TrimSpace(out.String()))
	if m == nil || m[1] != name {
		t.Fatalf("serve printed %q; want the README's line for lab %s", out.String(), name)
	}
	base := "http://127.0.0.1:" + m[2]
	resp, err := http.Get(base + "/api/lab")
	if err != nil {
		t.Fatal(err)
	}
	var page struct {
		Nodes []struct{ Name string } `json:"nodes"`
	}
	err = json.NewDecoder(resp.Body).Decode(&page)
	resp.Body.Close()
	if err != nil {
		t.Fatalf("the page's lab: %v", err)
	}
	l, err := lab.OpenName(name, lab.Options{StateRoot: os.Getenv(lab.StateRootEnv)}) // where cliLab pointed the CLI
	if err != nil {
		t.Fatal(err)
	}
	var nodes, drawn []string
	for _, n := range l.Topology().Nodes {
		nodes = append(nodes, n.Name)
	}
	for _, n := range page.Nodes {
		drawn = append(drawn, n.Name)
	}
	slices.Sort(nodes)
	slices.Sort(drawn)
	if !slices.Equal(nodes, drawn) {
		t.Errorf("the page's lab has nodes %v; the lab has %v", drawn, nodes)
	}
	act := func(token string) int {
		req, _ := http.NewRequest("POST", base+"/api/link", strings.NewReader(`{"node":"ce1","iface":"eth1","action":"up"}`))
		if token != "" {
			req.Header.Set(web.TokenHeader, token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := act(""); code != http.StatusUnauthorized {
		t.Errorf("an action without the token: HTTP %d", code)
	}
	if code := act(m[3]); code != http.StatusOK {
		t.Errorf("an action with the printed token: HTTP %d", code)
	}
	if i := labtest.Iface(t, labtest.Inspect(t, l), "ce1", "eth1"); i.State != "up" {
		t.Errorf("after the page's restore, inspect reads ce1:eth1 %s", i.State)
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("serve ended with exit %d", code)
	}
}
