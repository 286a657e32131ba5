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
func swanctlConf(conns []Conn) string {
	var w confWriter
	w.comment("Written by erlab (lab/ike); holds pre-shared keys: keep it mode 0600.")
	w.open("connections")
	for _, c := range conns {
		p, _ := Proposals(c.Algorithm)
		w.open(c.Name)
		w.set("version", 2)
		w.set("local_addrs", c.Local)
		w.set("remote_addrs", c.Remote)
		w.set("proposals", p.IKE)
		w.set("mobike", "no")
		w.set("encap", yesNo(c.Encap))
		w.set("dpd_delay", seconds(c.DPDDelay))
		w.set("keyingtries", 0)
		w.set("unique", "replace")
		w.set("send_certreq", "no")
		w.set("rekey_time", seconds(c.IKERekeyTime))
		w.set("over_time", seconds(c.IKELifeTime-c.IKERekeyTime))
		w.set("reauth_time", 0)
		w.open("local")
		w.set("auth", "psk")
		w.set("id", c.Local)
		w.close()
		w.open("remote")
		w.set("auth", "psk")
		w.set("id", c.Remote)
		w.close()
		w.open("children")
		w.open(c.Name)
		w.set("mode", "tunnel")
		w.set("esp_proposals", p.ESP)
		if c.IfID > 0 {
			w.set("local_ts", "0.0.0.0/0,::/0")
			w.set("remote_ts", "0.0.0.0/0,::/0")
			w.set("if_id_in", c.IfID)
			w.set("if_id_out", c.IfID)
		} else {
			w.set("local_ts", joinPrefixes(c.LocalTS))
			w.set("remote_ts", joinPrefixes(c.RemoteTS))
		}
		w.set("rekey_time", seconds(c.RekeyTime))
		w.set("life_time", seconds(c.LifeTime))
		if c.Initiator {
			w.set("start_action", "start")
			w.set("dpd_action", "restart")
			w.set("close_action", "start")
		} else {
			w.set("start_action", "none")
			w.set("dpd_action", "clear")
			w.set("close_action", "none")
		}
		w.close()
		w.close()
		w.close()
	}
	w.close()
	w.open("secrets")
	for _, c := range conns {
		w.open("ike-" + c.Name)
		w.set("id-local", c.Local)
		w.set("id-remote", c.Remote)
		// Hex, so that any byte string works and nothing in it can
		// break the file's syntax.
		w.set("secret", "0x"+hex.EncodeToString(c.PSK))
		w.close()
	}
	w.close()
	return w.b.String()
}

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
