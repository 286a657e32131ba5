// Package kernel wraps the Linux networking calls erlab makes: named network
// namespaces, per-namespace sysctls and processes, and the kernel feature
// probe. Names follow iproute2, and each doc comment gives the ip equivalent.
package kernel

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetNSDir is where named namespaces are bind-mounted, as iproute2 does, so
// that `ip netns list` shows erlab's namespaces.
const NetNSDir = "/run/netns"

// NetNSPath returns the bind-mount path of a named namespace.
func NetNSPath(name string) string { return filepath.Join(NetNSDir, name) }

var prepareOnce struct {
	sync.Once
	err error
}

// prepareNetNSDir makes /run/netns a shared mount point, as `ip netns add`
// does, so that namespaces created later also appear in mount namespaces
// that were copied from this one (ip netns exec, containers).
func prepareNetNSDir() error {
	prepareOnce.Do(func() {
		if err := os.MkdirAll(NetNSDir, 0o755); err != nil {
			prepareOnce.err = err
			return
		}
		err := unix.Mount("", NetNSDir, "none", unix.MS_SHARED|unix.MS_REC, "")
		if errors.Is(err, unix.EINVAL) { // not a mount point yet
			if err = unix.Mount(NetNSDir, NetNSDir, "none", unix.MS_BIND|unix.MS_REC, ""); err == nil {
				err = unix.Mount("", NetNSDir, "none", unix.MS_SHARED|unix.MS_REC, "")
			}
		}
		if err != nil {
			prepareOnce.err = fmt.Errorf("make %s a shared mount: %w", NetNSDir, err)
		}
	})
	return prepareOnce.err
}

// NetNSAdd creates a named network namespace: ip netns add NAME. It fails
// with fs.ErrExist when the name is taken.
func NetNSAdd(name string) error {
	return bindNetNS(name, "create", func(path string) error {
		return InNewNetNS(func() error {
			return unix.Mount("/proc/thread-self/ns/net", path, "none", unix.MS_BIND, "")
		})
	})
}

// NetNSAttach names the network namespace of a running process (a
// container's init): ip netns attach NAME PID.
func NetNSAttach(name string, pid int) error {
	return bindNetNS(name, "attach", func(path string) error {
		return unix.Mount(fmt.Sprintf("/proc/%d/ns/net", pid), path, "none", unix.MS_BIND, "")
	})
}

// bindNetNS makes NetNSDir/NAME and binds a namespace on it with mount; a
// name taken fails with fs.ErrExist, and a failed mount leaves no file.
func bindNetNS(name, what string, mount func(path string) error) error {
	if err := prepareNetNSDir(); err != nil {
		return err
	}
	path := NetNSPath(name)
	f, err := os.OpenFile(path, os.O_RDONLY|os.O_CREATE|os.O_EXCL, 0o444)
	if err != nil {
		return fmt.Errorf("%s namespace %s: %w", what, name, err)
	}
	f.Close()
	if err := mount(path); err != nil {
		os.Remove(path)
		return fmt.Errorf("%s namespace %s: %w", what, name, err)
	}
	return nil
}

// InNewNetNS runs fn on an OS thread of its own inside a new, unnamed
// network namespace (unshare), then puts the thread back in its namespace,
// or throws it away if it cannot: what fn makes there (a bind mount, a
// socket) is what keeps the namespace alive afterwards.
func InNewNetNS(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := netns.Get()
		if err != nil {
			errc <- err
			return
		}
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			orig.Close()
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("unshare: %w", err)
			return
		}
		err = fn()
		if serr := netns.Set(orig); serr == nil {
			runtime.UnlockOSThread()
		}
		orig.Close() // before the caller goes on: it holds nothing of ours after
		errc <- err
	}()
	return <-errc
}

// NetNSDel removes a named namespace: ip netns del NAME. A namespace that is
// already gone, or whose creation was cut short (file without mount), is
// removed without error. The kernel frees the namespace, and the devices in
// it, once no process or socket holds it.
func NetNSDel(name string) error {
	path := NetNSPath(name)
	if err := unix.Unmount(path, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete namespace %s: %w", name, err)
	}
	return nil
}

// NetNSList returns the named namespaces whose names start with prefix:
// ip netns list | grep ^PREFIX.
func NetNSList(prefix string) ([]string, error) {
	entries, err := os.ReadDir(NetNSDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), prefix) {
			names = append(names, e.Name())
		}
	}
	return names, nil
}

// NetNSExists reports whether a named namespace is mounted.
func NetNSExists(name string) bool {
	_, err := netNSInode(NetNSPath(name))
	return err == nil
}

// NetNSInode is the identity of the namespace mounted at a name now: a
// namespace deleted and made again under the same name has another.
func NetNSInode(name string) (uint64, error) { return netNSInode(NetNSPath(name)) }

// netNSInode returns the nsfs inode of the namespace at path; it fails for a
// plain file (a creation cut short).
func netNSInode(path string) (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0, err
	}
	var fsst unix.Statfs_t
	if err := unix.Statfs(path, &fsst); err != nil {
		return 0, err
	}
	if fsst.Type != unix.NSFS_MAGIC {
		return 0, fmt.Errorf("%s is not a namespace", path)
	}
	return st.Ino, nil
}

// Do runs fn on an OS thread that is inside the named namespace: the same as
// what `ip netns exec NAME` gives a command, for the calling goroutine only.
// Processes started by fn (exec.Cmd.Start) are born in the namespace.
func Do(name string, fn func() error) error {
	target, err := netns.GetFromPath(NetNSPath(name))
	if err != nil {
		return fmt.Errorf("open namespace %s: %w", name, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter namespace %s: %w", name, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: Go ends it with the goroutine rather than
		// reuse a thread stuck in the lab's namespace.
		return errors.Join(ferr, fmt.Errorf("leave namespace %s: %w", name, err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// hostNS is the network namespace erlab was started in, the host's, where
// a host link's far end lives: taken as the program starts, while its
// main goroutine is on the main thread, before any thread moves.
var hostNS, hostNSErr = netns.Get()

// HostNetNS returns a handle on the host's namespace, shared: the caller
// does not close it.
func HostNetNS() (netns.NsHandle, error) {
	if hostNSErr != nil {
		return hostNS, fmt.Errorf("the host's namespace: %w", hostNSErr)
	}
	return hostNS, nil
}

// Open returns a handle on the named namespace, for netlink.NewHandleAt.
func Open(name string) (netns.NsHandle, error) {
	h, err := netns.GetFromPath(NetNSPath(name))
	if err != nil {
		return h, fmt.Errorf("open namespace %s: %w", name, err)
	}
	return h, nil
}

// PIDsIn maps each named namespace to the processes inside it, from one scan
// of /proc: what `ip netns pids NAME` prints, for many names at once.
func PIDsIn(names []string) (map[string][]int, error) {
	byInode := map[uint64]string{}
	for _, n := range names {
		if ino, err := netNSInode(NetNSPath(n)); err == nil {
			byInode[ino] = n
		}
	}
	out := map[string][]int{}
	if len(byInode) == 0 {
		return out, nil
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	self := os.Getpid()
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) != nil {
			continue
		}
		if n, ok := byInode[st.Ino]; ok {
			out[n] = append(out[n], pid)
		}
	}
	return out, nil
}

// RouteHandle opens rtnetlink inside a named namespace, as `ip -n NAME`
// does. The handle keeps the namespace for as long as it is open.
func RouteHandle(name string) (*netlink.Handle, error) {
	return handleIn(name, unix.NETLINK_ROUTE)
}

// XfrmHandle opens rtnetlink and XFRM netlink inside a named namespace, as
// `ip -n NAME xfrm` needs.
func XfrmHandle(name string) (*netlink.Handle, error) {
	return handleIn(name, unix.NETLINK_ROUTE, unix.NETLINK_XFRM)
}

func handleIn(name string, families ...int) (*netlink.Handle, error) {
	fd, err := Open(name)
	if err != nil {
		return nil, err
	}
	defer fd.Close()
	h, err := netlink.NewHandleAt(fd, families...)
	if err != nil {
		return nil, fmt.Errorf("netlink in %s: %w", name, err)
	}
	return h, nil
}

// ProcessAlive reports whether pid still runs (a zombie no longer counts:
// it holds no namespace).
func ProcessAlive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the command name in parentheses: "pid (comm) S ...".
	for i := len(b) - 1; i > 0; i-- {
		if b[i] == ')' && i+2 < len(b) {
			return b[i+2] != 'Z' && b[i+2] != 'X'
		}
	}
	return true
}

// NetNSIsPIDs reports whether the named namespace is the one process pid
// runs in: false once the process has a new one (a container its runtime
// restarted) or is gone.
func NetNSIsPIDs(name string, pid int) bool {
	ino, err := netNSInode(NetNSPath(name))
	if err != nil {
		return false
	}
	var st unix.Stat_t
	if unix.Stat(fmt.Sprintf("/proc/%d/ns/net", pid), &st) != nil {
		return false
	}
	return st.Ino == ino
}
