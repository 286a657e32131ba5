package ike

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/strongswan/govici/vici"
)

// flatConf reads swanctl.conf syntax into "section.sub.key" → value.
func flatConf(t *testing.T, text string) map[string]string {
	t.Helper()
	out := map[string]string{}
	var path []string
	for i, l := range strings.Split(text, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case l == "" || strings.HasPrefix(l, "#"):
		case strings.HasSuffix(l, " {"):
			path = append(path, strings.TrimSuffix(l, " {"))
		case l == "}":
			path = path[:len(path)-1]
		default:
			k, v, ok := strings.Cut(l, " = ")
			if !ok {
				t.Fatalf("line %d: %q", i+1, l)
			}
			out[strings.Join(append(slices.Clone(path), k), ".")] = v
		}
	}
	return out
}

// flatMessage does the same for a vici message, a list as swanctl.conf
// writes it (comma-separated).
func flatMessage(prefix string, m *vici.Message, out map[string]string) {
	for _, k := range m.Keys() {
		switch v := m.Get(k).(type) {
		case string:
			out[prefix+k] = v
		case []string:
			out[prefix+k] = strings.Join(v, ",")
		case *vici.Message:
			flatMessage(prefix+k+".", v, out)
		}
	}
}

// TestLoadMessages checks that what Start loads over vici is what swanctl
// would send for the swanctl.conf Start writes, which charon's start script
// loads: a connection loaded twice the same stays as it is (charon
// compares them), where a different one would be replaced and its SAs
// torn down.
func TestLoadMessages(t *testing.T) {
	n := testNode("/var/lib/erlab/lab1/a")
	conf := flatConf(t, swanctlConf(n.conns()))
	fromVici := map[string]string{}
	for _, c := range n.conns() {
		m := connMessage(c)
		if keys := m.Keys(); len(keys) != 1 || keys[0] != c.Name {
			t.Errorf("load-conn %s: top-level keys %v, want the connection's name", c.Name, keys)
		}
		flatMessage("connections.", m, fromVici)
		// swanctl sends these as lists (is_list_key), the rest as values.
		conn := m.Get(c.Name).(*vici.Message)
		child := conn.Get("children").(*vici.Message).Get(c.Name).(*vici.Message)
		for _, sec := range []*vici.Message{conn, child} {
			for _, k := range sec.Keys() {
				_, isList := sec.Get(k).([]string)
				if isList != listKeys[k] {
					t.Errorf("load-conn %s: %s is a %T", c.Name, k, sec.Get(k))
				}
			}
		}
		if ts := child.Get("local_ts"); c.IfID > 0 && !slices.Equal(ts.([]string), []string{"0.0.0.0/0", "::/0"}) {
			t.Errorf("load-conn %s: local_ts %q", c.Name, ts)
		}

		// load-shared: the secret's section, with the raw key.
		s := sharedMessage(c)
		id, typ, data, owners := s.Get("id"), s.Get("type"), s.Get("data"), s.Get("owners")
		sec := "secrets." + secretID(c) + "."
		if id != secretID(c) || typ != "IKE" || data != string(c.PSK) ||
			!slices.Equal(owners.([]string), []string{conf[sec+"id-local"], conf[sec+"id-remote"]}) ||
			conf[sec+"secret"] != "0x"+hex.EncodeToString([]byte(data.(string))) {
			t.Errorf("load-shared %s: id %v type %v owners %v; swanctl.conf has %q", c.Name, id, typ, owners, conf[sec+"id-local"])
		}
	}
	for k := range conf {
		if !strings.HasPrefix(k, "connections.") {
			delete(conf, k)
		}
	}
	if diff := cmp.Diff(conf, fromVici); diff != "" {
		t.Errorf("swanctl.conf's connections (-) and the load-conn messages (+) differ:\n%s", diff)
	}
	for _, c := range n.Conns {
		noPSK(t, "load-conn message", connMessage(c.withDefaults()).String(), c.PSK)
	}
}

// fakeNode is testNode with its IKEDir in a temporary directory, where a
// fake charon serves vici.
func fakeNode(t *testing.T, handle func(cmd string, req *vici.Message) ([]*vici.Message, *vici.Message)) (Node, *fakeCharon) {
	n := testNode(t.TempDir())
	dir := filesOf(n).dir
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return n, newFakeCharon(t, dir, handle)
}

var okReply = msg("success", "yes")

// TestLoad loads a node into a charon that holds a stale connection and
// key of an earlier run: keys first, then connections, and the stale ones
// unloaded; a refusal is an error that names the connection and shows no
// key.
func TestLoad(t *testing.T) {
	var n Node
	n, f := fakeNode(t, func(cmd string, req *vici.Message) ([]*vici.Message, *vici.Message) {
		switch cmd {
		case "get-shared":
			return nil, msg("keys", []string{"ike-to-b", "ike-old"})
		case "get-conns":
			return nil, msg("conns", []string{"old", "to-b"})
		case "load-conn":
			if req.Get("branch_1") != nil {
				// As if charon echoed a key in its message.
				return nil, msg("success", "no", "errmsg", "invalid value 0x"+hex.EncodeToString(n.Conns[1].PSK))
			}
		}
		return nil, okReply
	})
	err := load(context.Background(), n)
	if err == nil || !strings.Contains(err.Error(), "connection branch_1: vici load-conn: vici: command failed: invalid value [redacted]") {
		t.Errorf("refused connection: %v", err)
	}
	for _, c := range n.Conns {
		noPSK(t, "load error", fmt.Sprint(err), c.PSK)
	}
	want := []string{"load-shared", "load-shared", "get-shared", "unload-shared", "load-conn", "load-conn", "get-conns", "unload-conn"}
	if diff := cmp.Diff(want, f.Commands()); diff != "" {
		t.Errorf("commands (-want +got):\n%s", diff)
	}
	calls := f.Calls()
	if calls[0].req.Get("id") != "ike-to-b" || calls[0].req.Get("data") != string(n.Conns[0].PSK) {
		t.Errorf("load-shared: id %v", calls[0].req.Get("id"))
	}
	if calls[3].req.Get("id") != "ike-old" || calls[7].req.Get("name") != "old" {
		t.Errorf("unloaded %v and %v, want ike-old and old", calls[3].req.Get("id"), calls[7].req.Get("name"))
	}
	// What the fake decoded off the wire is what connMessage built.
	got, want2 := map[string]string{}, map[string]string{}
	flatMessage("", calls[4].req, got)
	flatMessage("", connMessage(n.conns()[0]), want2)
	if diff := cmp.Diff(want2, got); diff != "" {
		t.Errorf("load-conn on the wire (-want +got):\n%s", diff)
	}

	// No charon: said so.
	n.Dir = t.TempDir()
	if err := load(context.Background(), n); err == nil || !strings.Contains(err.Error(), "charon is not running") {
		t.Errorf("no socket: %v", err)
	}
}

// TestStatusOverVici lists SAs from a fake charon that sends its list-sa
// events in the same write as its reply, many times: govici's
// CallStreaming loses some of them then, listSAs must not.
func TestStatusOverVici(t *testing.T) {
	n, _ := fakeNode(t, func(cmd string, _ *vici.Message) ([]*vici.Message, *vici.Message) {
		if cmd != "list-sas" {
			return nil, nil
		}
		branch := encapEvent()
		branch.Set("branch_1", branch.Get("tun0"))
		branch.Unset("tun0")
		old := connectingEvent()
		old.Set("to-b", old.Get("tun0"))
		old.Unset("tun0")
		cur := rekeyingEvent()
		cur.Set("to-b", cur.Get("tun0"))
		cur.Unset("tun0")
		return []*vici.Message{old, branch, cur}, msg()
	})
	for i := 0; i < 100; i++ {
		infos, err := Status(n)
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != 2 || infos[0].Name != "to-b" || len(infos[0].IKE) != 2 || !infos[0].Established() ||
			infos[1].Name != "branch_1" || len(infos[1].IKE) != 1 || !infos[1].IKE[0].NAT {
			t.Fatalf("listing %d: %+v", i, infos)
		}
	}
	n.Dir = t.TempDir()
	if _, err := Status(n); err == nil || !strings.Contains(err.Error(), "charon is not running (no vici socket") {
		t.Errorf("no socket: %v", err)
	}
}

// TestRekeySAOverVici checks the rekey commands and their errors.
func TestRekeySAOverVici(t *testing.T) {
	var mu sync.Mutex
	matches := "1"
	n, f := fakeNode(t, func(cmd string, req *vici.Message) ([]*vici.Message, *vici.Message) {
		mu.Lock()
		defer mu.Unlock()
		if matches == "0" {
			return nil, msg("success", "no", "matches", "0", "errmsg", "no matching SAs to rekey found")
		}
		return nil, msg("success", "yes", "matches", matches)
	})
	if err := RekeySA(n, "to-b", false); err != nil {
		t.Fatal(err)
	}
	if err := RekeySA(n, "to-b", true); err != nil {
		t.Fatal(err)
	}
	calls := f.Calls()
	if len(calls) != 2 || calls[0].cmd != "rekey" || calls[0].req.Get("child") != "to-b" || calls[0].req.Get("ike") != nil ||
		calls[1].req.Get("ike") != "to-b" || calls[1].req.Get("child") != nil {
		t.Errorf("rekey requests: %+v", calls)
	}
	mu.Lock()
	matches = "0"
	mu.Unlock()
	if err := RekeySA(n, "to-b", false); err == nil || !strings.Contains(err.Error(), "rekey the CHILD SA of to-b: vici rekey: vici: command failed: no matching SAs to rekey found") {
		t.Errorf("nothing to rekey: %v", err)
	}
	if err := RekeySA(n, "nope", false); err == nil || !strings.Contains(err.Error(), `no connection "nope"`) {
		t.Errorf("unknown connection: %v", err)
	}
}

// setTiming changes WaitEstablished's timing for one test.
func setTiming(t *testing.T, poll, reinit time.Duration) {
	p, r := pollInterval, reinitiateAfter
	pollInterval, reinitiateAfter = poll, reinit
	t.Cleanup(func() { pollInterval, reinitiateAfter = p, r })
}

// TestWaitEstablishedEvent: with polls an hour apart, only the
// child-updown event can end the wait, and does.
func TestWaitEstablishedEvent(t *testing.T) {
	setTiming(t, time.Hour, time.Hour)
	var mu sync.Mutex
	up := false
	n, f := fakeNode(t, func(cmd string, _ *vici.Message) ([]*vici.Message, *vici.Message) {
		if cmd != "list-sas" {
			return nil, nil
		}
		mu.Lock()
		defer mu.Unlock()
		ev := connectingEvent()
		if up {
			ev = rekeyingEvent()
		}
		ev.Set("to-b", ev.Get("tun0"))
		ev.Unset("tun0")
		return []*vici.Message{ev}, msg()
	})
	done := make(chan error, 1)
	go func() { done <- WaitEstablished(context.Background(), n, "to-b", 20*time.Second) }()
	deadline := time.Now().Add(10 * time.Second)
	for f.Subscribers("child-updown") == 0 || len(f.Calls()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("WaitEstablished neither subscribed nor looked")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// An event of another connection does not end the pause...
	f.Emit("child-updown", msg("up", "yes", "branch_1", msg("state", "ESTABLISHED")))
	select {
	case err := <-done:
		t.Fatalf("returned on another connection's event: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	if n := len(f.Calls()); n != 1 {
		t.Errorf("%d list-sas calls after another connection's event, want 1", n)
	}
	// ...this one's does.
	mu.Lock()
	up = true
	mu.Unlock()
	t0 := time.Now()
	f.Emit("child-updown", msg("up", "yes", "to-b", msg("state", "ESTABLISHED")))
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("established %s after the event", time.Since(t0).Round(time.Microsecond))
	case <-time.After(10 * time.Second):
		t.Fatal("the event did not end the wait")
	}
	// The watch's session is closed: the fake sees it go soon after.
	for _, e := range updown {
		for i := 0; f.Subscribers(e) != 0; i++ {
			if i == 200 {
				t.Fatalf("still subscribed to %s 2 s after the wait", e)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestWaitEstablishedReinitiate: an initiator without an IKE SA is told to
// initiate again, without waiting for the outcome; the timeout error says
// where things stand.
func TestWaitEstablishedReinitiate(t *testing.T) {
	setTiming(t, 20*time.Millisecond, 100*time.Millisecond)
	n, f := fakeNode(t, func(cmd string, _ *vici.Message) ([]*vici.Message, *vici.Message) {
		return nil, okReply
	})
	err := WaitEstablished(context.Background(), n, "to-b", time.Second)
	if err == nil || !strings.Contains(err.Error(), "connection to-b: not established after") || !strings.Contains(err.Error(), "no IKE SA (initiating end") {
		t.Errorf("timeout: %v", err)
	}
	var inits []fakeCall
	for _, c := range f.Calls() {
		if c.cmd == "initiate" {
			inits = append(inits, c)
		}
	}
	// Every reinitiateAfter: about 8 in a second; at least a few.
	if len(inits) < 3 || len(inits) > 12 {
		t.Errorf("%d initiate calls in 1s, one per 100ms wanted", len(inits))
	}
	if len(inits) > 0 {
		r := inits[0].req
		if r.Get("child") != "to-b" || r.Get("ike") != "to-b" || r.Get("timeout") != "-1" {
			t.Errorf("initiate request: child %v ike %v timeout %v", r.Get("child"), r.Get("ike"), r.Get("timeout"))
		}
	}
	// The responder never initiates.
	before := len(f.Calls())
	WaitEstablished(context.Background(), n, "branch_1", 300*time.Millisecond)
	for _, c := range f.Calls()[before:] {
		if c.cmd == "initiate" {
			t.Error("a responder initiated")
		}
	}
}

// TestWaitRekeyEvent checks the watcher Rekey uses: events of other
// connections and kinds are passed over, and a closed session ends the
// wait with an error.
func TestWaitRekeyEvent(t *testing.T) {
	n, f := fakeNode(t, func(string, *vici.Message) ([]*vici.Message, *vici.Message) { return nil, okReply })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w, err := watch(ctx, n, "to-b", "child-rekey", "ike-rekey")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- w.wait(ctx, func(ev vici.Event) bool { return ev.Name == "child-rekey" }) }()
	f.Emit("ike-rekey", msg("to-b", msg("old", msg(), "new", msg())))
	f.Emit("child-rekey", msg("branch_1", msg("child-sas", msg())))
	select {
	case err := <-done:
		t.Fatalf("returned on the wrong event: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	f.Emit("child-rekey", msg("to-b", msg("child-sas", msg("to-b-3", msg("old", msg(), "new", msg())))))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	go func() { done <- w.wait(ctx, func(vici.Event) bool { return true }) }()
	w.Close()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "closed the vici session") {
		t.Errorf("closed session: %v", err)
	}
	// Charon gone: the watch cannot start.
	n.Dir = t.TempDir()
	if _, err := watch(ctx, n, "to-b", "child-rekey"); err == nil || !strings.Contains(err.Error(), "not running") {
		t.Errorf("no charon: %v", err)
	}
}
