package ike

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/ipsec/xfrm"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/supervise"
)

// Timeouts of Start and Stop.
const (
	// SocketTimeout bounds the wait for charon's vici socket. It took
	// 1.4–1.8 s in the microVM.
	SocketTimeout = 30 * time.Second
	// StopTimeout is how long Stop lets charon close its SAs (it sends
	// DELETEs) before it kills it.
	StopTimeout = 10 * time.Second
)

// Binaries Start runs, found on PATH or else here (Debian's places).
const (
	charonName  = "charon-systemd"
	swanctlName = "swanctl"
	sbin        = "/usr/sbin"
)

// charon runs under erlab's supervisor (lab/supervise): it starts charon
// again a second later whenever it dies other than by a clean exit, and
// writes each charon's PID into the node's PID file (the daemon writes
// none of its own). charon's start script reloads the connections each
// time; the SAs the dead charon left in the kernel stay until they expire
// (the kernel prefers the new ones) or the next Start. Stop signals the
// supervisor's whole session, supervisor and charon at once.
func supervisorSpec(charonBin string, f files) supervise.Spec {
	return supervise.Spec{Argv: []string{charonBin}, PIDFile: f.charonPID, BaseEnv: env(f)}
}

// lookBin finds one of strongSwan's binaries.
func lookBin(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	p := filepath.Join(sbin, name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("strongSwan's %s not found on PATH nor in %s: apt-get install charon-systemd strongswan-swanctl libstrongswan-standard-plugins", name, sbin)
	}
	return p, nil
}

// env is the environment charon runs with, and the swanctl of its start
// script with it: erlab's, without what would make charon-systemd talk to
// erlab's own systemd unit, plus the node's strongswan.conf and swanctl
// directory (so that swanctl looks for certificates there, not in the
// host's /etc/swanctl).
func env(f files) []string {
	var out []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "NOTIFY_SOCKET", k == "STRONGSWAN_CONF", k == "SWANCTL_DIR",
			strings.HasPrefix(k, "LISTEN_"), strings.HasPrefix(k, "WATCHDOG_"):
			continue
		}
		out = append(out, kv)
	}
	return append(out, "STRONGSWAN_CONF="+f.strongswan, "SWANCTL_DIR="+f.dir)
}

// Start runs a node's charon: it writes strongswan.conf and swanctl.conf
// into the node's IKEDir, clears what an earlier charon of the node left in
// the kernel and warms the kernel's crypto modules (see prepareKernel),
// starts charon-systemd inside the node's namespace under a shell loop
// that restarts it, waits for its vici socket and loads the pre-shared keys
// and connections over it (vici load-shared, load-conn). Initiating ends
// start setting up their tunnels then; WaitEstablished waits for them.
//
// A charon already running for the node is an error: Stop it first. If
// Start fails after charon was started, it stops it again. The previous
// run's log is kept as charon.log.1.
func Start(ctx context.Context, n Node) error {
	if err := n.Validate(); err != nil {
		return err
	}
	charonBin, err := lookBin(charonName)
	if err != nil {
		return fmt.Errorf("%s: %w", n.label(), err)
	}
	swanctlBin, err := lookBin(swanctlName)
	if err != nil {
		return fmt.Errorf("%s: %w", n.label(), err)
	}
	f := filesOf(n)
	if pid, ok := running(f); ok {
		return fmt.Errorf("%s: charon is already running (PID %d): Stop it first", n.label(), pid)
	}
	if err := writeFiles(n, swanctlBin); err != nil {
		return err
	}
	if err := prepareKernel(n.NetNS, n.conns()); err != nil {
		return fmt.Errorf("%s: %w", n.label(), err)
	}

	out, err := os.OpenFile(f.out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("%s: %w", n.label(), err)
	}
	defer out.Close()
	// A session of its own (supervise.Command): charon outlives the erlab
	// command that started it, and Stop can signal the supervisor and
	// charon as one group.
	cmd, err := supervise.Command(supervisorSpec(charonBin, f), out)
	if err != nil {
		return fmt.Errorf("%s: %w", n.label(), err)
	}
	cmd.Dir = f.dir
	if err := kernel.Do(n.NetNS, cmd.Start); err != nil {
		return fmt.Errorf("%s: start charon: %w", n.label(), err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }() // reap it if it dies while we run
	if err := os.WriteFile(f.superPID, []byte(strconv.Itoa(cmd.Process.Pid)+"\n"), 0o600); err != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		return fmt.Errorf("%s: %w", n.label(), err)
	}
	if err := waitSocket(ctx, f, exited); err != nil {
		return errors.Join(fmt.Errorf("%s: %w", n.label(), err), Stop(n))
	}
	if err := checkPlugins(f); err != nil {
		return errors.Join(fmt.Errorf("%s: %w", n.label(), err), Stop(n))
	}
	// The start script loads swanctl.conf too, but what goes wrong there
	// only goes to charon's log: load the same connections over vici to
	// report it. Loading a connection that did not change is a no-op in
	// charon ("updated vici connection"), so whichever load comes second
	// does not initiate again.
	lctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	if err := load(lctx, n); err != nil {
		return errors.Join(fmt.Errorf("%s: load the connections over vici: %w", n.label(), err), Stop(n))
	}
	return nil
}

// load gives a node's charon its pre-shared keys and connections over vici.
func load(ctx context.Context, n Node) error {
	c, err := dial(ctx, n)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.load(ctx, n.conns())
}

// conns returns the node's connections with their defaults.
func (n Node) conns() []Conn {
	out := make([]Conn, len(n.Conns))
	for i, c := range n.Conns {
		out[i] = c.withDefaults()
	}
	return out
}

// writeFiles prepares a node's IKEDir for a charon: the directory (0700),
// strongswan.conf and swanctl.conf (0600), no stale socket or PID file, and
// the previous log moved to charon.log.1.
func writeFiles(n Node, swanctlBin string) error {
	if st, err := os.Stat(n.Dir); err != nil || !st.IsDir() {
		return fmt.Errorf("%s: node directory %s: %v", n.label(), n.Dir, errOrNotDir(err))
	}
	f := filesOf(n)
	if err := os.Mkdir(f.dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("%s: create %s: %w", n.label(), f.dir, err)
	}
	// An existing directory may have another mode: it is about to hold
	// the keys.
	if err := os.Chmod(f.dir, 0o700); err != nil {
		return fmt.Errorf("%s: chmod %s: %w", n.label(), f.dir, err)
	}
	if err := writeSecret(f.strongswan, strongswanConf(f, swanctlBin)); err != nil {
		return fmt.Errorf("%s: write %s: %w", n.label(), f.strongswan, err)
	}
	// The error is about the file, never its content.
	if err := writeSecret(f.swanctl, swanctlConf(n.conns())); err != nil {
		return fmt.Errorf("%s: write %s: %w", n.label(), f.swanctl, err)
	}
	for _, stale := range []string{f.socket, f.charonPID, f.superPID} {
		if err := os.Remove(stale); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: remove stale %s: %w", n.label(), stale, err)
		}
	}
	if err := os.Rename(f.log, f.log+".1"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("%s: keep the previous log: %w", n.label(), err)
	}
	return nil
}

// redact removes the connections' pre-shared keys, in the forms
// swanctl.conf and vici's load-shared hold them or a parser might echo
// them, from a message.
func redact(msg string, conns []Conn) string {
	for _, c := range conns {
		if len(c.PSK) == 0 {
			continue
		}
		h := hex.EncodeToString(c.PSK)
		for _, form := range []string{"0x" + h, h, strings.ToUpper(h), string(c.PSK)} {
			if len(form) >= 4 {
				msg = strings.ReplaceAll(msg, form, "[redacted]")
			}
		}
	}
	return msg
}

func errOrNotDir(err error) error {
	if err != nil {
		return err
	}
	return errors.New("not a directory")
}

// writeSecret writes a file only its owner can read, atomically: the
// temporary file is created anew with mode 0600, so that the content never
// sits in a file of another mode.
func writeSecret(path, text string) error {
	tmp := path + ".new"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	fh, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = fh.WriteString(text)
	if cerr := fh.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, path)
}

// waitSocket waits until charon's vici socket accepts connections.
func waitSocket(ctx context.Context, f files, exited <-chan error) error {
	deadline := time.Now().Add(SocketTimeout)
	for {
		if c, err := net.Dial("unix", f.socket); err == nil {
			c.Close()
			return nil
		}
		select {
		case err := <-exited:
			return fmt.Errorf("charon's supervisor exited (%v) before the vici socket came up; %s:\n%s\n%s:\n%s", err, f.out, tail(f.out, 10), f.log, tail(f.log, 10))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("charon's vici socket %s not up after %s; %s:\n%s", f.socket, SocketTimeout, f.log, tail(f.log, 10))
		}
	}
}

// checkPlugins fails when charon's log says a plugin of charonPlugins did
// not load. charon runs without it, and fails later with messages that do
// not point at the cause: without openssl "configured DH group ECP_256 not
// supported", without kdf "key derivation failed" (interop.md).
func checkPlugins(f files) error {
	b, err := os.ReadFile(f.log)
	if err != nil {
		return fmt.Errorf("charon's log: %w", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if i := strings.Index(l, "plugin '"); i >= 0 && strings.Contains(l, "failed to load") {
			return fmt.Errorf("charon could not load a plugin it needs (%s): apt-get install libstrongswan-standard-plugins strongswan-swanctl", strings.TrimSpace(l[i:]))
		}
	}
	return nil
}

// xfrmHandle opens XFRM netlink in a node's namespace.
func xfrmHandle(ns string) (*netlink.Handle, error) {
	fd, err := kernel.Open(ns)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	h, err := netlink.NewHandleAt(fd, unix.NETLINK_XFRM)
	if err != nil {
		return nil, fmt.Errorf("xfrm netlink in %s: %w", ns, err)
	}
	return h, nil
}

// prepareKernel readies a node's namespace for a new charon: it removes
// what an earlier charon of the node left behind and makes the kernel load
// the crypto modules the connections need.
func prepareKernel(ns string, conns []Conn) error {
	h, err := xfrmHandle(ns)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := flushLeftovers(h, conns); err != nil {
		return err
	}
	return warmKernel(h, conns)
}

// flushLeftovers deletes the ESP SAs between the outer addresses of the
// node's connections, and the policies whose templates name them. A
// charon killed with SIGKILL (a crash, or Stop's last resort) cannot
// remove its SAs and policies: they would stay until their lifetime ends,
// listed beside the new charon's. The kernel prefers the newest SA, so
// they do no harm but confuse whoever reads `ip xfrm state`. A static
// lab/ipsec tunnel between the same addresses would go too; it could not
// coexist with the connection anyway.
func flushLeftovers(h *netlink.Handle, conns []Conn) error {
	ours := func(src, dst net.IP) bool {
		s, _ := netip.AddrFromSlice(src)
		d, _ := netip.AddrFromSlice(dst)
		s, d = s.Unmap(), d.Unmap()
		for _, c := range conns {
			l, r := c.Local.Unmap(), c.Remote.Unmap()
			if s == l && d == r || s == r && d == l {
				return true
			}
		}
		return false
	}
	states, err := kernel.Dump(func() ([]netlink.XfrmState, error) { return h.XfrmStateList(netlink.FAMILY_ALL) })
	if err != nil {
		return fmt.Errorf("list SAs: %w", err)
	}
	var errs []error
	for i := range states {
		s := &states[i]
		if s.Proto != netlink.XFRM_PROTO_ESP || !ours(s.Src, s.Dst) {
			continue
		}
		if err := h.XfrmStateDel(s); err != nil && !errors.Is(err, unix.ESRCH) {
			errs = append(errs, fmt.Errorf("delete leftover SA spi %#08x %s->%s: %w", uint32(s.Spi), s.Src, s.Dst, err))
		}
	}
	policies, err := kernel.Dump(func() ([]netlink.XfrmPolicy, error) { return h.XfrmPolicyList(netlink.FAMILY_ALL) })
	if err != nil {
		return errors.Join(append(errs, fmt.Errorf("list policies: %w", err))...)
	}
	for i := range policies {
		p := &policies[i]
		for _, tm := range p.Tmpls {
			if ours(tm.Src, tm.Dst) {
				if err := h.XfrmPolicyDel(p); err != nil && !errors.Is(err, unix.ENOENT) {
					errs = append(errs, fmt.Errorf("delete leftover policy %s->%s: %w", p.Src, p.Dst, err))
				}
				break
			}
		}
	}
	return errors.Join(errs...)
}

// warmKernel adds and deletes one throwaway SA per algorithm. The first SA
// of a kind after boot makes the kernel load the crypto modules, which took
// 2.4 s in the microVM — inside charon's IKE_AUTH processing, close to the
// 3 s after which the peer gives up. It also says plainly when the kernel
// cannot do ESP with that algorithm at all.
func warmKernel(h *netlink.Handle, conns []Conn) error {
	done := map[xfrm.Algorithm]bool{}
	for _, c := range conns {
		if done[c.Algorithm] {
			continue
		}
		done[c.Algorithm] = true
		s := &netlink.XfrmState{
			Src: net.IPv4(127, 0, 0, 1), Dst: net.IPv4(127, 0, 0, 2),
			Proto: netlink.XFRM_PROTO_ESP, Mode: netlink.XFRM_MODE_TUNNEL, Spi: 0x1eab,
		}
		enc, auth := c.Algorithm.KeyLen()
		if c.Algorithm.AEAD() {
			s.Aead = &netlink.XfrmStateAlgo{Name: "rfc4106(gcm(aes))", Key: make([]byte, enc), ICVLen: 128}
		} else {
			s.Crypt = &netlink.XfrmStateAlgo{Name: "cbc(aes)", Key: make([]byte, enc)}
			s.Auth = &netlink.XfrmStateAlgo{Name: "hmac(sha256)", Key: make([]byte, auth), TruncateLen: 128}
		}
		h.XfrmStateDel(s) // one left over by a run cut short
		if err := h.XfrmStateAdd(s); err != nil {
			return fmt.Errorf("the kernel cannot do ESP with %s (%v); it needs CONFIG_INET_ESP and the crypto modules (gcm, cbc, hmac, sha256): see kernel-vm.md or run in scripts/vm-run", c.Algorithm, err)
		}
		if err := h.XfrmStateDel(s); err != nil {
			return fmt.Errorf("delete the throwaway %s SA: %w", c.Algorithm, err)
		}
	}
	return nil
}

// Stop stops a node's charon and its supervisor: SIGTERM to both, which
// makes charon delete its SAs and tell the peers (DELETE), then SIGKILL
// for what is left after StopTimeout, after which Stop removes the SAs and
// policies charon could not. It signals only PIDs from the node's PID files
// whose command lines are still the ones Start launched. A node that is not
// running is no error.
func Stop(n Node) error {
	f := filesOf(n)
	super, _ := readPID(f.superPID)
	charon, _ := readPID(f.charonPID)
	if super > 0 && !isOurs(super, f) {
		super = 0
	}
	if charon > 0 && !isOurCharon(charon, f) {
		charon = 0
	}
	if super == 0 && charon == 0 {
		removeRunFiles(f)
		return nil
	}
	signal := func(sig syscall.Signal) {
		if super > 0 {
			// The group: the supervisor and charon.
			syscall.Kill(-super, sig)
		}
		if charon > 0 {
			syscall.Kill(charon, sig)
		}
	}
	gone := func() bool { return !alive(super) && !alive(charon) }
	signal(syscall.SIGTERM)
	deadline := time.Now().Add(StopTimeout)
	for !gone() && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	var err error
	if !gone() {
		signal(syscall.SIGKILL)
		for i := 0; i < 40 && !gone(); i++ {
			time.Sleep(50 * time.Millisecond)
		}
		err = fmt.Errorf("%s: charon did not stop within %s of SIGTERM and was killed", n.label(), StopTimeout)
		if !gone() {
			err = fmt.Errorf("%s: charon (PID %d) or its supervisor (PID %d) survived SIGKILL", n.label(), charon, super)
		} else if h, herr := xfrmHandle(n.NetNS); herr == nil {
			// What the killed charon could not remove.
			if ferr := flushLeftovers(h, n.conns()); ferr != nil {
				err = errors.Join(err, fmt.Errorf("%s: %w", n.label(), ferr))
			}
			h.Close()
		}
	}
	removeRunFiles(f)
	return err
}

// removeRunFiles removes what only a running charon needs.
func removeRunFiles(f files) {
	for _, p := range []string{f.superPID, f.charonPID, f.charonPID + ".new", f.socket} {
		os.Remove(p)
	}
}

// running reports a live supervisor or charon of this node.
func running(f files) (int, bool) {
	if pid, err := readPID(f.superPID); err == nil && isOurs(pid, f) && alive(pid) {
		return pid, true
	}
	if pid, err := readPID(f.charonPID); err == nil && isOurCharon(pid, f) && alive(pid) {
		return pid, true
	}
	return 0, false
}

func readPID(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return 0, fmt.Errorf("%s: no PID", path)
	}
	return pid, nil
}

// isOurs checks that pid is still the supervisor Start launched for these
// files, not another process that got its PID since.
func isOurs(pid int, f files) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	if len(args) == 0 || !strings.HasPrefix(args[0], "erlab-supervise-") {
		return false
	}
	spec, ok := supervise.Of(pid)
	return ok && spec.PIDFile == f.charonPID
}

// isOurCharon checks that pid is a charon running with this node's
// strongswan.conf.
func isOurCharon(pid int, f files) bool {
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil || filepath.Base(strings.TrimSuffix(exe, " (deleted)")) != charonName {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return false
	}
	for _, kv := range strings.Split(string(b), "\x00") {
		if kv == "STRONGSWAN_CONF="+f.strongswan {
			return true
		}
	}
	return false
}

// alive reports a process that exists and is not a zombie (a zombie's
// parent may be slow to reap it, or not be us).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) state ...: comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}

// tail returns the last n lines of a file, for error messages. charon's
// log at level 1 holds no key.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(" + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
