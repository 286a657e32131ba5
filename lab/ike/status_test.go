package ike

import (
	"encoding/json"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/strongswan/govici/vici"
)

// The list-sa events below are charon's (strongSwan 5.9.8, in the
// microVM), as swanctl --list-sas --pretty printed them, rebuilt key by key.

var anyTS = []string{"0.0.0.0/0", "::/0"}

// rekeyingEvent is an IKE SA during a CHILD SA rekey: the old CHILD SA
// (DELETED) and the new one.
func rekeyingEvent() *vici.Message {
	return msg("tun0", msg(
		"uniqueid", "2", "version", "2", "state", "ESTABLISHED",
		"local-host", "192.0.2.1", "local-port", "500", "local-id", "192.0.2.1",
		"remote-host", "192.0.2.2", "remote-port", "500", "remote-id", "192.0.2.2",
		"initiator", "yes", "initiator-spi", "bbffcf151ee52208", "responder-spi", "ce8d1d84a2fb4a3c",
		"encr-alg", "AES_GCM_16", "encr-keysize", "128", "prf-alg", "PRF_HMAC_SHA2_256", "dh-group", "ECP_256",
		"established", "4", "rekey-time", "14253",
		"child-sas", msg(
			"tun0-1", msg("name", "tun0", "uniqueid", "1", "reqid", "1", "state", "DELETED", "mode", "TUNNEL", "protocol", "ESP",
				"spi-in", "c44849ac", "spi-out", "ce77cf85", "if-id-in", "0000002a", "if-id-out", "0000002a",
				"encr-alg", "AES_GCM_16", "encr-keysize", "128",
				"bytes-in", "0", "packets-in", "0", "bytes-out", "0", "packets-out", "0",
				"rekey-time", "3241", "life-time", "3956", "install-time", "4", "local-ts", anyTS, "remote-ts", anyTS),
			"tun0-2", msg("name", "tun0", "uniqueid", "2", "reqid", "1", "state", "INSTALLED", "mode", "TUNNEL", "protocol", "ESP",
				"spi-in", "c1a4c56a", "spi-out", "c61f15c2", "if-id-in", "0000002a", "if-id-out", "0000002a",
				"encr-alg", "AES_GCM_16", "encr-keysize", "128", "dh-group", "ECP_256",
				"bytes-in", "0", "packets-in", "0", "bytes-out", "0", "packets-out", "0",
				"rekey-time", "3268", "life-time", "3960", "install-time", "0", "local-ts", anyTS, "remote-ts", anyTS),
		)))
}

// connectingEvent is an initiator connecting again after the peer went
// away: no identities yet, the exchanges in progress, no CHILD SA.
func connectingEvent() *vici.Message {
	return msg("tun0", msg(
		"uniqueid", "3", "version", "2", "state", "CONNECTING",
		"local-host", "192.0.2.1", "local-port", "500", "local-id", "%any",
		"remote-host", "192.0.2.2", "remote-port", "500", "remote-id", "%any",
		"initiator", "yes", "initiator-spi", "f52f4395e9bb00a4", "responder-spi", "0000000000000000",
		"tasks-active", []string{"IKE_VENDOR", "IKE_INIT", "IKE_NATD", "IKE_CERT_PRE", "IKE_AUTH", "IKE_CERT_POST",
			"IKE_CONFIG", "IKE_AUTH_LIFETIME", "IKE_ESTABLISH", "CHILD_CREATE"},
		"child-sas", msg()))
}

// encapEvent has NAT-T forced: IKE on 4500, the CHILD SA encapsulated,
// counters.
func encapEvent() *vici.Message {
	return msg("tun0", msg(
		"uniqueid", "1", "version", "2", "state", "ESTABLISHED",
		"local-host", "192.0.2.1", "local-port", "4500", "local-id", "192.0.2.1",
		"remote-host", "192.0.2.2", "remote-port", "4500", "remote-id", "192.0.2.2",
		"initiator", "yes", "initiator-spi", "748adc5dba565b88", "responder-spi", "9daaefdf87d0c671",
		"nat-remote", "yes", "nat-any", "yes",
		"encr-alg", "AES_GCM_16", "encr-keysize", "128", "prf-alg", "PRF_HMAC_SHA2_256", "dh-group", "ECP_256",
		"established", "4", "rekey-time", "13725",
		"child-sas", msg(
			"tun0-1", msg("name", "tun0", "uniqueid", "1", "reqid", "1", "state", "INSTALLED", "mode", "TUNNEL", "protocol", "ESP",
				"encap", "yes", "spi-in", "ca1f391c", "spi-out", "c8c20b48", "if-id-in", "0000002a", "if-id-out", "0000002a",
				"encr-alg", "AES_GCM_16", "encr-keysize", "128",
				"bytes-in", "168", "packets-in", "2", "use-in", "0", "bytes-out", "168", "packets-out", "2", "use-out", "0",
				"rekey-time", "3286", "life-time", "3956", "install-time", "4", "local-ts", anyTS, "remote-ts", anyTS),
		)))
}

// cbcEvent has AES-CBC and HMAC-SHA-256, whose integrity algorithms the
// GCM events lack.
func cbcEvent() *vici.Message {
	child := func(id, state, in, out string) *vici.Message {
		return msg("name", "t", "uniqueid", id, "reqid", "1", "state", state, "mode", "TUNNEL", "protocol", "ESP",
			"spi-in", in, "spi-out", out, "if-id-in", "00000007", "if-id-out", "00000007",
			"encr-alg", "AES_CBC", "encr-keysize", "256", "integ-alg", "HMAC_SHA2_256_128",
			"bytes-in", "0", "packets-in", "0", "bytes-out", "0", "packets-out", "0",
			"rekey-time", "3107", "life-time", "4199", "install-time", "1", "local-ts", anyTS, "remote-ts", anyTS)
	}
	return msg("t", msg(
		"uniqueid", "1", "version", "2", "state", "ESTABLISHED",
		"local-host", "198.51.100.1", "local-port", "500", "local-id", "198.51.100.1",
		"remote-host", "198.51.100.2", "remote-port", "500", "remote-id", "198.51.100.2",
		"initiator", "yes", "initiator-spi", "b49fcf12b360e8e3", "responder-spi", "3cc8dd67282c536e",
		"encr-alg", "AES_CBC", "encr-keysize", "256", "integ-alg", "HMAC_SHA2_256_128",
		"prf-alg", "PRF_HMAC_SHA2_256", "dh-group", "MODP_2048", "established", "1", "rekey-time", "12965",
		"child-sas", msg("t-1", child("1", "DELETED", "cce6d7a2", "ca7f57bb"), "t-2", child("2", "INSTALLED", "c62a94bb", "ccef78e9"))))
}

// decode reads list-sa events as listSAs does.
func decode(t *testing.T, events ...*vici.Message) map[string][]IKEInfo {
	t.Helper()
	sas := map[string][]IKEInfo{}
	for _, ev := range events {
		if err := addSAs(sas, ev); err != nil {
			t.Fatal(err)
		}
	}
	return sas
}

func TestDecodeSAs(t *testing.T) {
	ci := connInfo("tun0", decode(t, rekeyingEvent()))
	want := ConnInfo{Name: "tun0", IKEState: "ESTABLISHED", ChildState: "INSTALLED", IKE: []IKEInfo{{
		UniqueID: 2, State: "ESTABLISHED",
		Local: netip.MustParseAddrPort("192.0.2.1:500"), Remote: netip.MustParseAddrPort("192.0.2.2:500"),
		LocalID: "192.0.2.1", RemoteID: "192.0.2.2", Initiator: true,
		InitiatorSPI: "bbffcf151ee52208", ResponderSPI: "ce8d1d84a2fb4a3c",
		Encryption: "AES_GCM_16-128", PRF: "PRF_HMAC_SHA2_256", DHGroup: "ECP_256",
		Established: 4 * time.Second, RekeyIn: 14253 * time.Second,
		Children: []ChildInfo{
			{UniqueID: 2, ReqID: 1, State: "INSTALLED", Mode: "TUNNEL", Protocol: "ESP", SPIIn: 0xc1a4c56a, SPIOut: 0xc61f15c2,
				IfIDIn: 42, IfIDOut: 42, Encryption: "AES_GCM_16-128", DHGroup: "ECP_256",
				Installed: 0, RekeyIn: 3268 * time.Second, ExpiresIn: 3960 * time.Second,
				LocalTS:  []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
				RemoteTS: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}},
			{UniqueID: 1, ReqID: 1, State: "DELETED", Mode: "TUNNEL", Protocol: "ESP", SPIIn: 0xc44849ac, SPIOut: 0xce77cf85,
				IfIDIn: 42, IfIDOut: 42, Encryption: "AES_GCM_16-128",
				Installed: 4 * time.Second, RekeyIn: 3241 * time.Second, ExpiresIn: 3956 * time.Second,
				LocalTS:  []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")},
				RemoteTS: []netip.Prefix{netip.MustParsePrefix("0.0.0.0/0"), netip.MustParsePrefix("::/0")}},
		},
	}}}
	if diff := cmp.Diff(want, ci, netipComparers); diff != "" {
		t.Errorf("rekeying (-want +got):\n%s", diff)
	}
	if !ci.Established() {
		t.Error("not Established")
	}

	ci = connInfo("tun0", decode(t, connectingEvent()))
	ike, child := ci.Active()
	if ci.IKEState != "CONNECTING" || ci.ChildState != "" || ike == nil || child != nil || ci.Established() ||
		ike.LocalID != "%any" || ike.Local != netip.MustParseAddrPort("192.0.2.1:500") || ike.ResponderSPI != "0000000000000000" ||
		len(ike.Tasks) != 10 || ike.Tasks[1] != "IKE_INIT" || len(ike.Children) != 0 || ike.Children == nil {
		t.Errorf("connecting: %+v", ci)
	}
	if d := describe(ci, true); !strings.Contains(d, "IKE SA CONNECTING (in progress: IKE_VENDOR IKE_INIT") || !strings.Contains(d, "no CHILD SA") {
		t.Errorf("describe: %s", d)
	}

	ci = connInfo("tun0", decode(t, encapEvent()))
	ike, child = ci.Active()
	if !ike.NAT || ike.Local.Port() != 4500 || ike.Remote.Port() != 4500 || !child.Encap ||
		child.BytesIn != 168 || child.PacketsIn != 2 || child.BytesOut != 168 || child.PacketsOut != 2 {
		t.Errorf("encap: %+v / %+v", *ike, *child)
	}

	ike, child = connInfo("t", decode(t, cbcEvent())).Active()
	if ike.Encryption != "AES_CBC-256" || ike.Integrity != "HMAC_SHA2_256_128" || ike.PRF != "PRF_HMAC_SHA2_256" || ike.DHGroup != "MODP_2048" ||
		child.Encryption != "AES_CBC-256" || child.Integrity != "HMAC_SHA2_256_128" || child.UniqueID != 2 || child.SPIOut != 0xccef78e9 {
		t.Errorf("CBC: IKE %+v CHILD %+v", *ike, *child)
	}

	// A connection without SAs, and an empty listing.
	ci = connInfo("other", decode(t, encapEvent()))
	if ci.IKEState != "" || len(ci.IKE) != 0 || ci.IKE == nil {
		t.Errorf("no SAs: %+v", ci)
	}
	if d := describe(ci, false); !strings.Contains(d, "responding end") {
		t.Errorf("describe: %s", d)
	}
	if sas := decode(t); len(sas) != 0 {
		t.Errorf("empty: %v", sas)
	}

	// During an IKE rekey, two events for one connection: the new IKE SA
	// with the CHILD SA ranks first, though the old one has it too until
	// it is deleted.
	oldIKE := connectingEvent()
	oldIKE.Get("tun0").(*vici.Message).Set("state", "REKEYED")
	oldIKE.Get("tun0").(*vici.Message).Set("uniqueid", "9")
	ci = connInfo("tun0", decode(t, oldIKE, rekeyingEvent()))
	if len(ci.IKE) != 2 || ci.IKE[0].UniqueID != 2 || ci.IKEState != "ESTABLISHED" || ci.IKE[1].State != "REKEYED" {
		t.Errorf("IKE rekey: %+v", ci)
	}

	// JSON round trip, with no key-like field.
	blob, err := json.Marshal(connInfo("tun0", decode(t, rekeyingEvent())))
	if err != nil {
		t.Fatal(err)
	}
	var back ConnInfo
	if err := json.Unmarshal(blob, &back); err != nil || back.IKE[0].Children[0].SPIIn != 0xc1a4c56a {
		t.Errorf("JSON round trip: %v %+v", err, back)
	}
	for _, m := range regexp.MustCompile(`"([a-z_]+)":`).FindAllStringSubmatch(string(blob), -1) {
		if f := m[1]; f == "key" || strings.HasSuffix(f, "_key") || strings.Contains(f, "psk") || strings.Contains(f, "secret") {
			t.Errorf("status JSON has a field %q", f)
		}
	}
}

// TestDecodeSAsErrors feeds events charon would not send: each error names
// the connection, the SA and the key at fault.
func TestDecodeSAsErrors(t *testing.T) {
	bad := func(change func(ike, child *vici.Message)) *vici.Message {
		ev := rekeyingEvent()
		ike := ev.Get("tun0").(*vici.Message)
		change(ike, ike.Get("child-sas").(*vici.Message).Get("tun0-2").(*vici.Message))
		return ev
	}
	for _, c := range []struct {
		name string
		ev   *vici.Message
		want string
	}{
		{"number", bad(func(ike, _ *vici.Message) { ike.Set("uniqueid", "many") }), `IKE SA of tun0: uniqueid: strconv.ParseUint: parsing "many"`},
		{"port", bad(func(ike, _ *vici.Message) { ike.Set("local-port", "70000") }), "local-port"},
		{"address", bad(func(ike, _ *vici.Message) { ike.Set("remote-host", "gw.example") }), "remote-host"},
		{"list for a value", bad(func(ike, _ *vici.Message) { ike.Set("state", []string{"ESTABLISHED"}) }), "state: a []string, want a value"},
		{"value for a list", bad(func(ike, _ *vici.Message) { ike.Set("tasks-active", "IKE_INIT") }), "tasks-active: a string, want a list"},
		{"children not a section", bad(func(ike, _ *vici.Message) { ike.Set("child-sas", "none") }), "child-sas: a string, want a section"},
		{"hex SPI", bad(func(_, child *vici.Message) { child.Set("spi-out", "0xc61f15c2") }), "CHILD SA tun0-2: spi-out"},
		{"range selector", bad(func(_, child *vici.Message) { child.Set("local-ts", []string{"10.0.0.1-10.0.0.9"}) }), "CHILD SA tun0-2: local-ts"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := addSAs(map[string][]IKEInfo{}, c.ev)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("got %v, want an error with %q", err, c.want)
			}
		})
	}
	// Not a section at the top: not an IKE SA, skipped.
	sas := map[string][]IKEInfo{}
	if err := addSAs(sas, msg("note", "x", "list", []string{"a"})); err != nil || len(sas) != 0 {
		t.Errorf("values beside the IKE SAs: %v %v", sas, err)
	}
}
