package ike

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// files names a node's charon files, all in its IKEDir.
type files struct {
	dir        string // the IKEDir, mode 0700
	strongswan string // strongswan.conf: daemon settings, no secret
	swanctl    string // swanctl.conf: connections and pre-shared keys, 0600
	socket     string // vici socket
	log        string // charon's filelog
	out        string // the supervisor's and charon's stdout and stderr
	superPID   string // PID of the supervising shell: its process group
	charonPID  string // PID of the charon it runs now
}

func filesOf(n Node) files {
	d := filepath.Join(n.Dir, IKEDir)
	return files{
		dir:        d,
		strongswan: filepath.Join(d, "strongswan.conf"),
		swanctl:    filepath.Join(d, "swanctl.conf"),
		socket:     filepath.Join(d, "charon.vici"),
		log:        filepath.Join(d, "charon.log"),
		out:        filepath.Join(d, "charon.out"),
		superPID:   filepath.Join(d, "supervisor.pid"),
		charonPID:  filepath.Join(d, "charon.pid"),
	}
}

func socketPath(n Node) string { return filesOf(n).socket }

// charonPlugins is the plugin list charon loads (interop.md): without
// openssl no ECP or MODP group, without kdf no key derivation. Naming the
// list also keeps charon from loading every plugin installed.
const charonPlugins = "random nonce openssl pem pkcs1 x509 revocation constraints pubkey kdf kernel-netlink socket-default vici"

// swanctlPlugins are what swanctl needs to read a configuration with
// pre-shared keys; without a list it tries, and loudly fails, to load
// plugins Debian does not ship.
const swanctlPlugins = "pem pkcs1 x509 revocation constraints pubkey openssl random"

// confWriter writes strongswan.conf syntax: nested sections and one
// setting per line — several on one line silently break the file.
type confWriter struct {
	b     strings.Builder
	depth int
}

func (w *confWriter) indent() { w.b.WriteString(strings.Repeat("\t", w.depth)) }

func (w *confWriter) open(section string) {
	w.indent()
	w.b.WriteString(section + " {\n")
	w.depth++
}

func (w *confWriter) close() {
	w.depth--
	w.indent()
	w.b.WriteString("}\n")
}

func (w *confWriter) set(key string, value any) {
	w.indent()
	fmt.Fprintf(&w.b, "%s = %v\n", key, value)
}

func (w *confWriter) comment(text string) {
	for _, l := range strings.Split(text, "\n") {
		w.indent()
		w.b.WriteString("# " + l + "\n")
	}
}

// strongswanConf is the daemon's configuration, for charon and swanctl
// alike (both find it through STRONGSWAN_CONF). It holds no secret.
//
//   - No routes and no routing table: erlab (or the caller) routes, into the
//     xfrm interface or through the underlay.
//   - Retransmissions 1 s apart, given up after the third try: dead peer
//     detection then takes 3–4 s instead of 166 s, and a connection attempt
//     to a peer that is not up yet is retried every 3 s (keyingtries = 0).
//   - The vici socket in the node's directory; swanctl ignores charon's
//     setting, so it gets its own.
//   - A start script loads swanctl.conf whenever charon (re)starts, so that
//     a charon the supervisor restarted has its connections again.
//   - A file log at level 1, which never shows keys (they appear at 4), and
//     nothing into the systemd journal, which many lab nodes would flood.
func strongswanConf(f files, swanctlBin string) string {
	var w confWriter
	w.comment("Written by erlab (lab/ike) for one lab node's charon; rewritten at every start.")
	w.open("charon")
	w.set("load", charonPlugins)
	w.set("install_routes", "no")
	w.set("install_virtual_ip", "no")
	w.set("routing_table", 0)
	w.set("retransmit_tries", 2)
	w.set("retransmit_timeout", "1.0")
	w.set("retransmit_base", "1.0")
	w.open("start-scripts")
	w.set("erlab-load", fmt.Sprintf("%s --load-all --noprompt --file %s", swanctlBin, f.swanctl))
	w.close()
	w.open("plugins")
	w.open("vici")
	w.set("socket", "unix://"+f.socket)
	w.close()
	w.close()
	w.open("journal")
	w.set("default", -1)
	w.close()
	w.open("filelog")
	w.open("erlab")
	w.set("path", f.log)
	w.set("time_format", "%F %T")
	w.set("time_add_ms", "yes")
	w.set("ike_name", "yes")
	w.set("append", "yes")
	w.set("flush_line", "yes")
	w.set("default", 1)
	w.close()
	w.close()
	w.close()
	w.open("swanctl")
	w.set("load", swanctlPlugins)
	w.set("socket", "unix://"+f.socket)
	w.close()
	return w.b.String()
}

// seconds writes a duration the way swanctl reads it.
func seconds(d time.Duration) string { return fmt.Sprintf("%ds", int64(d/time.Second)) }

// swanctlConf is the node's connections and their pre-shared keys; it must
// be written 0600. The connections are validated and have their defaults.
// It renders the same sections that Start loads over vici (connSection,
// secretSection), so that the file charon's start script loads and what
// erlab loads are one configuration.
func swanctlConf(conns []Conn) string {
	var w confWriter
	w.comment("Written by erlab (lab/ike); holds pre-shared keys: keep it mode 0600.")
	w.open("connections")
	for _, c := range conns {
		w.section(connSection(c))
	}
	w.close()
	w.open("secrets")
	for _, c := range conns {
		w.section(secretSection(c))
	}
	w.close()
	return w.b.String()
}

// confSection is a section of swanctl.conf: settings and subsections, in
// order. The same tree is written into swanctl.conf and sent over vici.
type confSection struct {
	name    string
	entries []confEntry
}

// confEntry is a setting (sub nil) or a subsection.
type confEntry struct {
	key, value string
	sub        *confSection
}

func (s *confSection) set(key string, value any) {
	s.entries = append(s.entries, confEntry{key: key, value: fmt.Sprint(value)})
}

func (s *confSection) open(name string) *confSection {
	sub := &confSection{name: name}
	s.entries = append(s.entries, confEntry{key: name, sub: sub})
	return sub
}

// section writes a section and everything in it.
func (w *confWriter) section(s *confSection) {
	w.open(s.name)
	for _, e := range s.entries {
		if e.sub != nil {
			w.section(e.sub)
		} else {
			w.set(e.key, e.value)
		}
	}
	w.close()
}

// connSection is one connection of swanctl.conf's connections section.
//
// Per connection: IKEv2 between the outer addresses, which are also the
// identities; MOBIKE off, which keeps IKE on UDP 500 (with it on, IKE
// moves to 4500 even without NAT); one IKE SA per peer (unique = replace);
// no certificate requests.
//
// The initiator starts the CHILD SA as soon as it is loaded (start_action
// = start), retries a peer that does not answer for ever (keyingtries =
// 0), and sets the tunnel up again when DPD finds the peer dead
// (dpd_action = restart) or the peer closes it (close_action = start, as
// when the peer's charon stops). The responder only answers (start_action
// = none) and forgets a dead initiator (dpd_action = clear). One end
// initiating gives one IKE SA and one CHILD SA per tunnel, every time:
// with both ends starting (or trapping traffic with start_action = trap)
// both may initiate at once and create duplicate SAs that strongSwan then
// has to sort out, which makes a lab's SPIs, counters and rekey timings
// depend on who won.
func connSection(c Conn) *confSection {
	p, _ := Proposals(c.Algorithm)
	s := &confSection{name: c.Name}
	s.set("version", 2)
	s.set("local_addrs", c.Local)
	s.set("remote_addrs", c.Remote)
	s.set("proposals", p.IKE)
	s.set("mobike", "no")
	s.set("encap", yesNo(c.Encap))
	s.set("dpd_delay", seconds(c.DPDDelay))
	s.set("keyingtries", 0)
	s.set("unique", "replace")
	s.set("send_certreq", "no")
	s.set("rekey_time", seconds(c.IKERekeyTime))
	s.set("over_time", seconds(c.IKELifeTime-c.IKERekeyTime))
	s.set("reauth_time", 0)
	local := s.open("local")
	local.set("auth", "psk")
	local.set("id", c.Local)
	remote := s.open("remote")
	remote.set("auth", "psk")
	remote.set("id", c.Remote)
	child := s.open("children").open(c.Name)
	child.set("mode", "tunnel")
	child.set("esp_proposals", p.ESP)
	if c.IfID > 0 {
		child.set("local_ts", "0.0.0.0/0,::/0")
		child.set("remote_ts", "0.0.0.0/0,::/0")
		child.set("if_id_in", c.IfID)
		child.set("if_id_out", c.IfID)
	} else {
		child.set("local_ts", joinPrefixes(c.LocalTS))
		child.set("remote_ts", joinPrefixes(c.RemoteTS))
	}
	child.set("rekey_time", seconds(c.RekeyTime))
	child.set("life_time", seconds(c.LifeTime))
	if c.Initiator {
		child.set("start_action", "start")
		child.set("dpd_action", "restart")
		child.set("close_action", "start")
	} else {
		child.set("start_action", "none")
		child.set("dpd_action", "clear")
		child.set("close_action", "none")
	}
	return s
}

// secretSection is a connection's pre-shared key in swanctl.conf's secrets
// section. Its name is also the key's unique id in charon (swanctl loads it
// under that id), so that loading it again replaces it.
func secretSection(c Conn) *confSection {
	s := &confSection{name: secretID(c)}
	s.set("id-local", c.Local)
	s.set("id-remote", c.Remote)
	// Hex, so that any byte string works and nothing in it can break the
	// file's syntax.
	s.set("secret", "0x"+hex.EncodeToString(c.PSK))
	return s
}

func secretID(c Conn) string { return "ike-" + c.Name }

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func joinPrefixes[T fmt.Stringer](ps []T) string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return strings.Join(s, ",")
}
