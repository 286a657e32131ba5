package mka

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	mdnetlink "github.com/mdlayher/netlink"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/erlab-dev/erlab/lab/fileutil"
	"github.com/erlab-dev/erlab/lab/kernel"
	"github.com/erlab-dev/erlab/lab/macsec"
	"github.com/erlab-dev/erlab/lab/macsec/genl"
	"github.com/erlab-dev/erlab/lab/supervise"
	"github.com/erlab-dev/erlab/lab/topo"
	"github.com/erlab-dev/erlab/lab/vlan"
	"github.com/erlab-dev/erlab/nodes"
)

// MKA mode runs Debian's wpa_supplicant (driver macsec_linux) on each end of
// a link. Left alone, wpa_supplicant creates the MACsec device itself, under
// a name the kernel picks, and deletes and recreates it whenever it restarts
// or re-reads its configuration — taking along the addresses and the VLANs
// above it. Renaming its device breaks it: it later changes the device by
// the name it read (driver_macsec_linux.c, try_commit), and its MKA session
// dies. But when a MACsec device with its SCI already exists on the port it
// adopts that one and never deletes it. So each protected port gets a
// keeper — this binary, re-executed in the node under a shell loop that
// restarts it — which makes the device under the topology's name with the
// SCI wpa_supplicant will use (the port's MAC, port 1), configures it and
// everything above it, runs wpa_supplicant as its child, and puts back what
// the kernel drops when wpa_supplicant takes the device down and up (routes).

// configEnv names the keeper's configuration file, for the keeper helper.
const configEnv = "ERLAB_MKA_CONFIG"

// HelperName is the keeper, as ERLAB_HELPER names it.
const HelperName = "mka-keeper"

// mkaKeeper is a keeper's configuration, written by deploy next to the
// wpa_supplicant configuration it names. It holds no key.
type mkaKeeper struct {
	NetNS  string `json:"netns"`
	Port   string `json:"port"`
	Device string `json:"device"`
	// The SecY's settings, as wpa_supplicant will also set them.
	Encrypt       bool   `json:"encrypt"`
	ReplayProtect bool   `json:"replay_protect"`
	Window        uint32 `json:"window"`
	WPAConf       string `json:"wpa_conf"` // mode 0600: it holds the CAK
	CtrlDir       string `json:"ctrl_dir"`
	Status        string `json:"status"`
	Log           string `json:"log"`
	// Interfaces are the MACsec device and the VLANs above it, parents
	// first; Routes are the node's routes that need them.
	Interfaces []mkaIface   `json:"interfaces"`
	Routes     []topo.Route `json:"routes"`
}

type mkaIface struct {
	Name      string             `json:"name"`
	Type      topo.InterfaceType `json:"type"`
	Parent    string             `json:"parent"`
	VLAN      *vlan.Tag          `json:"vlan,omitempty"` // a VLAN above the MACsec device
	Addresses []netip.Prefix     `json:"addresses,omitempty"`
	MTU       int                `json:"mtu,omitempty"`
	Down      bool               `json:"down,omitempty"`
}

func (i mkaIface) topo() *topo.Interface {
	t := &topo.Interface{Name: i.Name, Type: i.Type, Parent: i.Parent, Addresses: i.Addresses, MTU: i.MTU, Down: i.Down, Ext: topo.Ext{}}
	if i.VLAN != nil {
		t.Owner, t.Ext[vlan.Name] = vlan.Name, i.VLAN
	}
	return t
}

// mkaStatus is what a keeper reports in its status file.
type mkaStatus struct {
	PID      int       `json:"pid"`
	WPAPID   int       `json:"wpa_pid"`
	Restarts int       `json:"restarts"`
	Started  time.Time `json:"started"`
	Ifindex  int       `json:"ifindex"` // the MACsec device now
}

// mkaFiles names a protected port's files in its node's directory.
func mkaFiles(dir, port string) (cfg, wpaConf string) {
	return filepath.Join(dir, "mka-"+port+".json"), filepath.Join(dir, "mka-"+port+".conf")
}

// mkaOwned says whether an interface is configured by an MKA keeper rather
// than by deploy: a MACsec device in MKA mode, or anything above one.
func mkaOwned(n *topo.Node, i *topo.Interface) bool {
	for range len(n.Interfaces) + 1 {
		if i == nil {
			return false
		}
		if m := macsec.OfDevice(i); m != nil && !m.Static() {
			return true
		}
		i = n.Interface(i.Parent)
	}
	return false
}

// mkaRoute says whether a route needs an MKA-owned interface: it names one,
// or its gateway is on one's subnet.
func mkaRoute(n *topo.Node, r topo.Route) bool {
	for _, i := range n.Interfaces {
		if !mkaOwned(n, i) {
			continue
		}
		if r.Dev == i.Name {
			return true
		}
		for _, p := range i.Addresses {
			if r.Via.IsValid() && p.Contains(r.Via) {
				return true
			}
		}
	}
	return false
}

// wpaConf is wpa_supplicant's configuration for one end of an MKA link
// (interop.md): no EAP, MKA with a pre-shared CAK, MACsec required.
func wpaConf(ctrlDir string, m *macsec.Config, cak, ckn []byte, priority int) string {
	integOnly, replay := 0, 0
	if !m.Encrypt {
		integOnly = 1
	}
	if m.ReplayProtect {
		replay = 1
	}
	return fmt.Sprintf(`ctrl_interface=%s
eapol_version=3
ap_scan=0
network={
	key_mgmt=NONE
	eapol_flags=0
	macsec_policy=1
	macsec_integ_only=%d
	macsec_replay_protect=%d
	macsec_replay_window=%d
	macsec_port=1
	mka_priority=%d
	mka_cak=%s
	mka_ckn=%s
}
`, ctrlDir, integOnly, replay, m.Window, priority, hex.EncodeToString(cak), hex.EncodeToString(ckn))
}

// startMKA writes the keeper's files for one end of an MKA link and starts
// the keeper in the node. The first end of the link gets the lower MKA
// priority, so it is the key server.
func startMKA(rn *nodes.Node, dev *topo.Interface) error {
	if err := rn.MakeDir(); err != nil {
		return err
	}
	n, m, keys := rn.Spec, macsec.OfDevice(dev), Of(dev.Link)
	cfgPath, confPath := mkaFiles(rn.Dir, dev.Parent)
	k := mkaKeeper{NetNS: rn.NetNS, Port: dev.Parent, Device: dev.Name, Encrypt: m.Encrypt, ReplayProtect: m.ReplayProtect, Window: m.Window, WPAConf: confPath, CtrlDir: filepath.Join(rn.Dir, "wpa"),
		Status: filepath.Join(rn.Dir, "mka-"+dev.Parent+".status.json"), Log: filepath.Join(rn.Dir, "mka-"+dev.Parent+".log")}
	for _, i := range n.Stack(dev) {
		k.Interfaces = append(k.Interfaces, mkaIface{Name: i.Name, Type: i.Type, Parent: i.Parent, VLAN: vlan.Of(i),
			Addresses: i.Addresses, MTU: i.MTU, Down: i.Down})
	}
	for _, r := range n.Routes {
		if mkaRoute(n, r) {
			k.Routes = append(k.Routes, r)
		}
	}
	if ctrl := filepath.Join(k.CtrlDir, dev.Parent); len(ctrl) > maxSocketPath {
		return fmt.Errorf("wpa_supplicant's control socket %s would be %d bytes, over the %d a socket address holds: give a shorter state root (%s)", ctrl, len(ctrl), maxSocketPath, "ERLAB_STATE_ROOT")
	}
	priority := 16
	if dev.Link.A.Node == n.Name && m.Lower(dev.Link.A.Iface) == dev.Parent {
		priority = 8
	}
	if err := fileutil.WriteFile(confPath, []byte(wpaConf(k.CtrlDir, m, keys.CAK, keys.CKN, priority)), 0o600); err != nil {
		return err
	}
	b, err := json.MarshalIndent(k, "", "  ")
	if err != nil {
		return err
	}
	if err := fileutil.WriteFile(cfgPath, b, 0o600); err != nil {
		return err
	}
	logf, err := os.OpenFile(k.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	defer logf.Close()
	// erlab's supervisor restarts the keeper when it exits with an error
	// (that is, when wpa_supplicant died), counting restarts for inspect.
	cmd, err := supervise.Command(supervise.Spec{Helper: HelperName, Env: []string{configEnv + "=" + cfgPath}}, logf)
	if err != nil {
		return err
	}
	if err := kernel.Do(rn.NetNS, cmd.Start); err != nil {
		return fmt.Errorf("start MKA keeper: %w", err)
	}
	go cmd.Wait() // reap it if it dies while we run
	return nil
}

// UpTimeout bounds how long deploy waits for an MKA link to be secured.
// wpa_supplicant takes 4–9 s on the emulated CPU of the microVM.
const UpTimeout = 60 * time.Second

// waitMKA waits until one end of an MKA link is secured and its device is
// configured, and says why not when it is not.
func waitMKA(ctx context.Context, rn *nodes.Node, dev *topo.Interface) error {
	deadline := time.Now().Add(UpTimeout)
	for {
		st, err := mkaState(rn.Dir, dev.Parent)
		if err == nil && st.Secured {
			if dev.Down || deviceUp(rn.NetNS, dev.Name) {
				return nil
			}
		}
		if time.Now().After(deadline) {
			why := "no answer from wpa_supplicant"
			if st != nil {
				why = st.summary()
			}
			return fmt.Errorf("MKA on %s not secured after %s: %s; see %s", dev.Parent, UpTimeout, why, filepath.Join(rn.Dir, "mka-"+dev.Parent+".log"))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// deviceUp says whether a node's device is there and set up.
func deviceUp(ns, name string) bool {
	h, err := kernel.RouteHandle(ns)
	if err != nil {
		return false
	}
	defer h.Close()
	l, err := h.LinkByName(name)
	return err == nil && l.Attrs().Flags&net.FlagUp != 0
}

// Info is an MKA session as inspect shows it.
type Info struct {
	Secured        bool   `json:"secured"`
	LivePeers      int    `json:"live_peers"`
	PotentialPeers int    `json:"potential_peers"`
	KeyServer      bool   `json:"key_server"`
	CKN            string `json:"ckn"`
	KeysReceived   int    `json:"keys_received"`
	KeysDistrib    int    `json:"keys_distributed"`
	Restarts       int    `json:"restarts"` // of wpa_supplicant, by its supervisor
	// Problem says why the session is not secured, when it is not.
	Problem string `json:"problem,omitempty"`
}

func (m *Info) summary() string {
	if m.Secured {
		return fmt.Sprintf("secured, %d live peer(s)", m.LivePeers)
	}
	return "not secured: " + m.Problem
}

// mkaState asks a port's wpa_supplicant for its MKA status over its control
// socket and reads the keeper's status and log.
func mkaState(dir, port string) (*Info, error) {
	cfgPath, _ := mkaFiles(dir, port)
	k, err := readKeeper(cfgPath)
	if err != nil {
		return nil, err
	}
	mi := &Info{}
	var st mkaStatus
	if b, err := os.ReadFile(k.Status); err == nil && json.Unmarshal(b, &st) == nil {
		mi.Restarts = st.Restarts
	}
	reply, err := wpaCommand(filepath.Join(k.CtrlDir, port), "STATUS")
	if err != nil {
		mi.Problem = "wpa_supplicant does not answer (" + err.Error() + ")"
		return mi, nil
	}
	kv := map[string]string{}
	for _, line := range strings.Split(reply, "\n") {
		if key, v, ok := strings.Cut(line, "="); ok {
			kv[key] = v
		}
	}
	atoi := func(s string) int { v, _ := strconv.Atoi(s); return v }
	mi.Secured, mi.KeyServer, mi.CKN = kv["Secured"] == "Yes", kv["is_key_server"] == "Yes", kv["ckn"]
	mi.LivePeers, mi.PotentialPeers = atoi(kv["live_peers"]), atoi(kv["potential_peers"])
	mi.KeysReceived, mi.KeysDistrib = atoi(kv["Number of Keys Received"]), atoi(kv["Number of Keys Distributed"])
	if !mi.Secured {
		mi.Problem = mkaProblem(mi, k.Log)
	}
	return mi, nil
}

// mkaProblem says why a session is not secured, from its status and from
// what wpa_supplicant logged last.
func mkaProblem(mi *Info, logPath string) string {
	recent := tailLines(logPath, 6)
	switch {
	case strings.Contains(recent, "Computed ICV is not equal to Received ICV"):
		return "the peer's MKPDUs fail the ICV check: the two ends hold different CAKs"
	case mi.LivePeers == 0 && mi.PotentialPeers == 0:
		return "no MKPDU from a peer with CKN " + mi.CKN + ": the peer is down, not running MKA, or uses another CKN"
	case mi.LivePeers == 0:
		return "a peer is heard but not yet live"
	}
	return "negotiating the SAK"
}

func tailLines(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

func readKeeper(path string) (*mkaKeeper, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var k mkaKeeper
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &k, nil
}

// maxSocketPath is the longest path a Unix socket address holds
// (sun_path, 108 bytes with its terminating NUL).
const maxSocketPath = 107

// wpaCommand sends one command to a wpa_supplicant control socket and
// returns the reply. Control sockets are datagram sockets in the file
// system, so this works from any network namespace.
func wpaCommand(ctrl, command string) (string, error) {
	// The reply comes to our own socket, which needs a path that fits a
	// socket address (108 bytes) wherever the lab's state is: a private
	// directory under the temporary one.
	dir, err := os.MkdirTemp("", "erlab-wpa")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(dir)
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(dir, "c"), Net: "unixgram"})
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if _, err := conn.WriteToUnix([]byte(command), &net.UnixAddr{Name: ctrl, Net: "unixgram"}); err != nil {
		return "", err
	}
	conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	buf := make([]byte, 8192)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return "", err
		}
		// Unsolicited event messages start with "<level>"; replies do not.
		if reply := string(buf[:n]); !strings.HasPrefix(reply, "<") {
			return reply, nil
		}
	}
}

// Helpers implements feature.HelperHook: the keeper, which the erlab
// binary is re-executed as, inside the node, by the shell loop above.
func (Feature) Helpers() map[string]func() int {
	return map[string]func() int{HelperName: func() int {
		log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
		if err := runKeeper(os.Getenv(configEnv), log); err != nil {
			log.Error("mka keeper", "err", err)
			return 1
		}
		return 0
	}}
}

// runKeeper runs wpa_supplicant for a port and keeps the MACsec device it
// makes named and configured. It returns nil when asked to stop, an error
// when wpa_supplicant dies (the supervisor starts both again).
func runKeeper(path string, log *slog.Logger) error {
	k, err := readKeeper(path)
	if err != nil {
		return err
	}
	h, err := netlink.NewHandle(unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer h.Close()
	port, err := h.LinkByName(k.Port)
	if err != nil {
		return fmt.Errorf("port %s: %w", k.Port, err)
	}
	if err := os.MkdirAll(k.CtrlDir, 0o700); err != nil {
		return err
	}
	updates, done := make(chan netlink.LinkUpdate, 64), make(chan struct{})
	defer close(done)
	if err := netlink.LinkSubscribe(updates, done); err != nil {
		return err
	}
	node := &nodes.Node{NetNS: k.NetNS, Ops: kernel.Real{}, Log: log}
	if err := makeMKADevice(h, k, port); err != nil {
		return err
	}
	if _, err := keepDevice(h, node, k, port.Attrs().Index, 0, true); err != nil {
		return err
	}
	wpa := exec.Command("wpa_supplicant", "-D", "macsec_linux", "-i", k.Port, "-c", k.WPAConf)
	wpa.Stdout, wpa.Stderr = os.Stderr, os.Stderr
	wpa.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM}
	if err := wpa.Start(); err != nil {
		return fmt.Errorf("start wpa_supplicant: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- wpa.Wait() }()
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

	st := mkaStatus{PID: supervise.SupervisorPID(), WPAPID: wpa.Process.Pid, Restarts: supervise.Restarts(), Started: time.Now().UTC()}
	writeStatus := func() {
		b, _ := json.Marshal(st)
		fileutil.WriteFile(k.Status, b, 0o600)
	}
	writeStatus()
	log.Info("wpa_supplicant started", "pid", wpa.Process.Pid, "port", k.Port)
	var lastErr string
	keep := func(full bool) {
		idx, err := keepDevice(h, node, k, port.Attrs().Index, st.Ifindex, full)
		if err != nil {
			if err.Error() != lastErr {
				log.Warn("configure MACsec device", "err", err)
			}
			lastErr = err.Error()
			return
		}
		lastErr = ""
		if idx != 0 && idx != st.Ifindex {
			log.Info("MACsec device configured", "device", k.Device, "ifindex", idx)
			st.Ifindex = idx
			writeStatus()
		}
	}
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	for {
		select {
		case <-sigs:
			wpa.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(3 * time.Second):
				wpa.Process.Kill()
			}
			return nil
		case err := <-exited:
			return fmt.Errorf("wpa_supplicant exited: %v", err)
		case u := <-updates:
			if u.Link.Type() == "macsec" && u.Attrs().ParentIndex == port.Attrs().Index {
				keep(false)
			}
		case <-tick.C:
			keep(true)
		}
	}
}

// makeMKADevice makes the port's MACsec device for wpa_supplicant to adopt,
// after removing any left by a wpa_supplicant that died (with keys no one
// renews, and an SCI the new one could not take).
func makeMKADevice(h *netlink.Handle, k *mkaKeeper, port netlink.Link) error {
	links, err := kernel.Dump(func() ([]netlink.Link, error) { return h.LinkList() })
	if err != nil {
		return err
	}
	for _, l := range links {
		if l.Type() == "macsec" && l.Attrs().ParentIndex == port.Attrs().Index {
			if err := h.LinkDel(l); err != nil {
				return fmt.Errorf("remove the old %s: %w", l.Attrs().Name, err)
			}
		}
	}
	conn, err := mdnetlink.Dial(unix.NETLINK_ROUTE, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	return genl.LinkAdd(conn, genl.LinkConfig{Name: k.Device, ParentIndex: port.Attrs().Index, Port: 1, Cipher: genl.GCMAES128,
		Encrypt: k.Encrypt, IncludeSCI: true, ReplayProtect: k.ReplayProtect, Window: k.Window, Validate: genl.ValidateStrict})
}

// keepDevice keeps the port's MACsec device configured: it and the VLANs
// above it, with their routes (the kernel drops routes through a device
// that goes down, as wpa_supplicant's controlled port does while it is not
// secured). It does the whole work when the device is new, came back up, or
// full is set (a periodic check that nothing was lost). It returns the
// device's index, 0 when there is none.
func keepDevice(h *netlink.Handle, node *nodes.Node, k *mkaKeeper, portIndex, known int, full bool) (int, error) {
	links, err := kernel.Dump(func() ([]netlink.Link, error) { return h.LinkList() })
	if err != nil {
		return 0, err
	}
	var dev netlink.Link
	for _, l := range links {
		if l.Type() != "macsec" || l.Attrs().ParentIndex != portIndex {
			continue
		}
		if l.Attrs().Name != k.Device {
			return 0, fmt.Errorf("wpa_supplicant made its own MACsec device %s instead of adopting %s", l.Attrs().Name, k.Device)
		}
		dev = l
	}
	if dev == nil {
		return 0, nil
	}
	a := dev.Attrs()
	if a.Index != known || (a.Flags&net.FlagUp == 0 && !k.Interfaces[0].Down) {
		full = true
	}
	if !full {
		return a.Index, nil
	}
	for _, mi := range k.Interfaces {
		i := mi.topo()
		if i.Owner == vlan.Name {
			if err := (vlan.Feature{}).MakeDevice(context.Background(), node, i); err != nil {
				return 0, fmt.Errorf("%s: %w", i.Name, err)
			}
		}
		if err := node.ConfigureInterface(i); err != nil {
			return 0, fmt.Errorf("%s: %w", i.Name, err)
		}
	}
	for _, r := range k.Routes {
		if err := node.AddRoute(r); err != nil && !errors.Is(err, unix.ENETUNREACH) {
			return 0, fmt.Errorf("route %s: %w", r.Dst, err)
		}
	}
	return a.Index, nil
}
