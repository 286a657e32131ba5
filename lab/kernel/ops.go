package kernel

import (
	"errors"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Ops is every change a deploy makes to the kernel, behind one small
// interface with two implementations: Real, which does it, and Recorder, a
// fake that writes each operation down as its iproute2 equivalent (the
// tailscale router's habit), so that a deploy plan can be tested without
// root and diffed against golden files.
//
// A caller states each operation twice: as the command line an operator
// would type (ip, sysctl, tc, ...) and as the function that does it. Real
// runs the function (and logs the line with -v); Recorder only records the
// line. The line must never hold a key: write [key] in its place.
type Ops interface {
	// Host runs fn in the host's namespace: ip netns add, ...
	Host(cmd string, fn func() error) error
	// Netlink runs fn with a netlink handle bound to the named namespace:
	// ip -n NS CMD. The handle speaks rtnetlink, and XFRM netlink too when
	// the command is ip xfrm's.
	Netlink(ns, cmd string, fn func(h *netlink.Handle) error) error
	// Do runs fn on an OS thread inside the named namespace, for what goes
	// by the thread's namespace (sysctls, sockets, generic netlink
	// families, processes started there): ip netns exec NS CMD.
	Do(ns, cmd string, fn func() error) error
	// Exec runs fn, which starts a process inside the namespace (or talks
	// to one) by itself: ip netns exec NS CMD.
	Exec(ns, cmd string, fn func() error) error
	// Wait waits for a condition (links up, a daemon ready): Real runs fn,
	// Recorder records it as holding.
	Wait(ns, what string, fn func() error) error
}

// Lines splits a command that holds several, one per line (an interface's
// MTU, address and state set through one netlink handle).
func Lines(cmd string) []string { return strings.Split(cmd, "\n") }

// Real is Ops that does what it is told. Log, when set, sees each command.
// Handles, when set, lends the netlink handles; else each call opens its
// own.
type Real struct {
	Log     func(ns, cmd string)
	Handles *Handles
}

func (r Real) log(ns, cmd string) {
	if r.Log != nil {
		for _, c := range Lines(cmd) {
			r.Log(ns, c)
		}
	}
}

// Host implements Ops.
func (r Real) Host(cmd string, fn func() error) error {
	r.log("", cmd)
	return fn()
}

// Netlink implements Ops. The handle comes from Handles, or lives for the
// call only: either way a deploy of thousands of nodes holds no
// descriptor per node.
func (r Real) Netlink(ns, cmd string, fn func(h *netlink.Handle) error) error {
	r.log(ns, cmd)
	families := []int{unix.NETLINK_ROUTE}
	if strings.HasPrefix(cmd, "xfrm ") {
		families = append(families, unix.NETLINK_XFRM)
	}
	h, release, err := r.Handles.open(ns, families...)
	if err != nil {
		return err
	}
	defer release()
	return fn(h)
}

// Do implements Ops.
func (r Real) Do(ns, cmd string, fn func() error) error {
	r.log(ns, cmd)
	return Do(ns, fn)
}

// Exec implements Ops.
func (r Real) Exec(ns, cmd string, fn func() error) error {
	r.log(ns, cmd)
	return fn()
}

// Wait implements Ops.
func (r Real) Wait(ns, what string, fn func() error) error {
	r.log(ns, "# wait: "+what)
	return fn()
}

// Recorder is Ops that records each operation as a line and does nothing.
// Lines of one namespace keep their order; Lines sorts the namespaces, so
// that a concurrent deploy records the same text every time.
type Recorder struct {
	mu    sync.Mutex
	host  []string
	byNS  map[string][]string
	order []string
}

func (r *Recorder) add(ns, line string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if ns == "" {
		r.host = append(r.host, line)
		return
	}
	if r.byNS == nil {
		r.byNS = map[string][]string{}
	}
	if _, ok := r.byNS[ns]; !ok {
		r.order = append(r.order, ns)
	}
	r.byNS[ns] = append(r.byNS[ns], line)
}

// Host implements Ops.
func (r *Recorder) Host(cmd string, _ func() error) error {
	for _, c := range Lines(cmd) {
		r.add("", c)
	}
	return nil
}

// Netlink implements Ops. A command of bridge(8) or tc(8) is recorded as
// that tool's, the rest as ip's.
func (r *Recorder) Netlink(ns, cmd string, _ func(*netlink.Handle) error) error {
	for _, c := range Lines(cmd) {
		tool, rest := "ip", c
		if t, after, ok := strings.Cut(c, " "); ok && (t == "bridge" || t == "tc") {
			tool, rest = t, after
		}
		r.add(ns, tool+" -n "+ns+" "+rest)
	}
	return nil
}

// Do implements Ops.
func (r *Recorder) Do(ns, cmd string, _ func() error) error {
	for _, c := range Lines(cmd) {
		r.add(ns, "ip netns exec "+ns+" "+c)
	}
	return nil
}

// Exec implements Ops.
func (r *Recorder) Exec(ns, cmd string, fn func() error) error { return r.Do(ns, cmd, fn) }

// Wait implements Ops.
func (r *Recorder) Wait(ns, what string, _ func() error) error {
	r.add(ns, "# "+ns+": wait: "+what)
	return nil
}

// Lines returns what was recorded: the host's operations first, in order,
// then each namespace's, namespaces sorted by name.
func (r *Recorder) Lines() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := append([]string(nil), r.host...)
	names := append([]string(nil), r.order...)
	sort.Strings(names)
	for _, ns := range names {
		out = append(out, r.byNS[ns]...)
	}
	return out
}

// String is Lines, one per line.
func (r *Recorder) String() string { return strings.Join(r.Lines(), "\n") + "\n" }

// Quote makes a value safe in a recorded command line.
func Quote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$;&|<>*?()[]{}#~`") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Retry repeats a kernel call that failed for a passing reason (a busy
// kernel answers EBUSY or EAGAIN, a device being renamed ENODEV) a few
// times before giving up.
func Retry(fn func() error) error {
	var err error
	for i := range 5 {
		if err = fn(); err == nil || !(errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EAGAIN)) {
			return err
		}
		sleep(i)
	}
	return err
}

// Dump runs a netlink dump (a list of links, addresses, routes, states)
// until it is consistent: the kernel marks a dump interrupted when what it
// lists changed under it (a device made or removed meanwhile), and the
// answer may then miss or repeat entries.
func Dump[T any](fn func() (T, error)) (T, error) {
	var (
		out T
		err error
	)
	for i := range 5 {
		if out, err = fn(); !errors.Is(err, netlink.ErrDumpInterrupted) {
			return out, err
		}
		sleep(i)
	}
	return out, err
}

// Exists says whether err means the object is already there, which an
// idempotent step takes as done.
func Exists(err error) bool { return errors.Is(err, unix.EEXIST) }

const unixRoute = unix.NETLINK_ROUTE

func sleep(attempt int) { time.Sleep(time.Duration(attempt+1) * 10 * time.Millisecond) }
