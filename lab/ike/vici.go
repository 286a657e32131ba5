package ike

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/strongswan/govici/vici"
)

// viciTimeout bounds one exchange with a node's charon over vici.
const viciTimeout = 30 * time.Second

// client is a vici session with a node's charon, for one operation.
//
// A load-shared message holds a pre-shared key: no message is ever logged,
// printed or put into an error, and the errors of client's methods are
// redacted of the node's keys (charon's error messages never show one, but
// a message might one day echo what it was sent).
type client struct {
	s     *vici.Session
	conns []Conn
}

// dial opens a vici session with a node's charon. A socket that is missing
// or that nobody listens on means charon is not running, and says so.
func dial(ctx context.Context, n Node) (*client, error) {
	path := filesOf(n).socket
	s, err := vici.NewSession(vici.WithSocketPath(path), vici.WithDialContext(func(_ context.Context, network, addr string) (net.Conn, error) {
		// govici dials with a background context: bound it by ours.
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ECONNREFUSED) {
			return nil, fmt.Errorf("%s: charon is not running (no vici socket %s)", n.label(), path)
		}
		return nil, fmt.Errorf("%s: connect to charon's vici socket %s: %w", n.label(), path, err)
	}
	return &client{s: s, conns: n.Conns}, nil
}

func (c *client) Close() { c.s.Close() }

// call runs a vici command. A reply with success = no is an error that
// holds charon's errmsg.
func (c *client) call(ctx context.Context, cmd string, m *vici.Message) (*vici.Message, error) {
	r, err := c.s.Call(ctx, cmd, m)
	if err != nil {
		return nil, c.fail(cmd, err)
	}
	return r, nil
}

// fail is err, redacted of the keys, as a new error: wrapping err would
// keep its unredacted text reachable.
func (c *client) fail(cmd string, err error) error {
	return errors.New("vici " + cmd + ": " + redact(err.Error(), c.conns))
}

// message builds a vici message from keys and values (string, []string or
// *vici.Message), in order.
func message(kv ...any) *vici.Message {
	m := vici.NewMessage()
	for i := 0; i+1 < len(kv); i += 2 {
		if err := m.Set(kv[i].(string), kv[i+1]); err != nil {
			// Only a type other than those three fails: a bug here.
			panic(fmt.Sprintf("vici message key %v: %v", kv[i], err))
		}
	}
	return m
}

// listKeys are the settings swanctl sends as lists, split at commas
// (is_list_key in swanctl's load_conns.c).
var listKeys = map[string]bool{
	"local_addrs": true, "remote_addrs": true, "proposals": true, "esp_proposals": true, "ah_proposals": true,
	"local_ts": true, "remote_ts": true, "vips": true, "pools": true, "groups": true,
}

// sectionMessage is a swanctl.conf section as swanctl --load-conns sends it:
// values as strings, list keys as lists, subsections as sections.
func sectionMessage(s *confSection) *vici.Message {
	m := vici.NewMessage()
	for _, e := range s.entries {
		var v any = e.value
		switch {
		case e.sub != nil:
			v = sectionMessage(e.sub)
		case listKeys[e.key]:
			var items []string
			for _, item := range strings.Split(e.value, ",") {
				if item = strings.TrimSpace(item); item != "" {
					items = append(items, item)
				}
			}
			v = items
		}
		if err := m.Set(e.key, v); err != nil {
			panic(err) // string, []string and *vici.Message always work
		}
	}
	return m
}

// connMessage is the load-conn message of a connection: what swanctl sends
// for the connection's section of swanctl.conf.
func connMessage(c Conn) *vici.Message {
	return message(c.Name, sectionMessage(connSection(c)))
}

// sharedMessage is the load-shared message of a connection's pre-shared
// key, as swanctl --load-creds sends the key's section of swanctl.conf: the
// section's name as the key's unique id, the raw key, and the identities
// (id-*) as its owners. It holds the key: never log it.
func sharedMessage(c Conn) *vici.Message {
	s := secretSection(c)
	var owners []string
	for _, e := range s.entries {
		if strings.HasPrefix(e.key, "id") {
			owners = append(owners, e.value)
		}
	}
	return message("id", s.name, "type", "IKE", "data", string(c.PSK), "owners", owners)
}

// load gives charon a node's pre-shared keys and connections, and takes
// away those it has that the node no longer has, as swanctl --load-all does
// with swanctl.conf: keys first, since an initiating connection starts at
// once. A connection loaded again unchanged stays as it is in charon
// ("updated vici connection"): its SAs and start action are left alone, so
// this load and the start script's do not initiate twice.
func (c *client) load(ctx context.Context, conns []Conn) error {
	var errs []error
	keys := map[string]bool{}
	for _, cn := range conns {
		keys[secretID(cn)] = true
		if _, err := c.call(ctx, "load-shared", sharedMessage(cn)); err != nil {
			errs = append(errs, fmt.Errorf("pre-shared key of %s: %w", cn.Name, err))
		}
	}
	if r, err := c.call(ctx, "get-shared", nil); err != nil {
		errs = append(errs, err)
	} else {
		for _, id := range listOf(r.Get("keys")) {
			if !keys[id] {
				if _, err := c.call(ctx, "unload-shared", message("id", id)); err != nil {
					errs = append(errs, fmt.Errorf("stale pre-shared key %s: %w", id, err))
				}
			}
		}
	}
	names := map[string]bool{}
	for _, cn := range conns {
		names[cn.Name] = true
		if _, err := c.call(ctx, "load-conn", connMessage(cn)); err != nil {
			errs = append(errs, fmt.Errorf("connection %s: %w", cn.Name, err))
		}
	}
	if r, err := c.call(ctx, "get-conns", nil); err != nil {
		errs = append(errs, err)
	} else {
		for _, name := range listOf(r.Get("conns")) {
			if !names[name] {
				if _, err := c.call(ctx, "unload-conn", message("name", name)); err != nil {
					errs = append(errs, fmt.Errorf("stale connection %s: %w", name, err))
				}
			}
		}
	}
	return errors.Join(errs...)
}

// listOf is a list value, nil for anything else.
func listOf(v any) []string {
	l, _ := v.([]string)
	return l
}

// listSAs asks charon for its IKE SAs and returns them by connection name.
//
// charon streams them as list-sa events before its reply to list-sas.
// govici's CallStreaming (v0.8.0) loses events that arrive together with
// the reply: it takes the next event or the reply from two channels in one
// select, which picks either when both are ready, and ends the listing at
// the reply. So the session subscribes to list-sa itself: its reader hands
// each event to the channel, in order, before it reads the reply, so all of
// them are there once Call returns.
func (c *client) listSAs(ctx context.Context) (map[string][]IKEInfo, error) {
	events := make(chan vici.Event, 256)
	c.s.NotifyEvents(events)
	if err := c.s.Subscribe("list-sa"); err != nil {
		return nil, c.fail("list-sas", err)
	}
	if _, err := c.call(ctx, "list-sas", nil); err != nil {
		return nil, err
	}
	// govici drops an event that finds the channel full.
	if len(events) == cap(events) {
		return nil, fmt.Errorf("vici list-sas: %d IKE SAs or more at once: some may be missing", cap(events))
	}
	sas := map[string][]IKEInfo{}
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				return nil, errors.New("vici list-sas: charon closed the session")
			}
			if ev.Name != "list-sa" {
				continue
			}
			if err := addSAs(sas, ev.Message); err != nil {
				return nil, fmt.Errorf("vici list-sas: %w", err)
			}
		default:
			return sas, nil
		}
	}
}

// initiate makes charon initiate a connection's CHILD SA (and its IKE SA)
// without waiting for the outcome (timeout -1): whoever waits sees it in
// the SAs and events.
func (c *client) initiate(ctx context.Context, conn string) error {
	_, err := c.call(ctx, "initiate", message("child", conn, "ike", conn, "timeout", "-1"))
	return err
}

// rekey makes charon rekey a connection's CHILD SA, or its IKE SA. charon
// queues the exchange and answers at once.
func (c *client) rekey(ctx context.Context, conn string, ike bool) error {
	sel := "child"
	if ike {
		sel = "ike"
	}
	_, err := c.call(ctx, "rekey", message(sel, conn))
	return err
}
