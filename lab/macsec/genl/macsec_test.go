package genl

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"net"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// attr is a netlink attribute as the kernel lays it out: length (header
// included), type, value, padded to 4 bytes.
func attr(typ uint16, v []byte) []byte {
	b := make([]byte, 4, 4+len(v)+3)
	binary.NativeEndian.PutUint16(b, uint16(4+len(v)))
	binary.NativeEndian.PutUint16(b[2:], typ)
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

func u8(v uint8) []byte   { return []byte{v} }
func u32(v uint32) []byte { return binary.NativeEndian.AppendUint32(nil, v) }
func u64(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }
func cat(bs ...[]byte) []byte {
	return bytes.Join(bs, nil)
}

// TestEncodeLinkInfo checks IFLA_LINKINFO byte for byte against the layout
// `ip link add link eth1 macsec0 type macsec port 1 cipher gcm-aes-xpn-256
// icvlen 16 encrypt on send_sci on replay on window 64 validate strict`
// produces (if_link.h: IFLA_MACSEC_*; the port is big-endian).
func TestEncodeLinkInfo(t *testing.T) {
	got, err := encodeLinkInfo(LinkConfig{Port: 1, Cipher: GCMAESXPN256, Encrypt: true, IncludeSCI: true, ReplayProtect: true, Window: 64, Validate: ValidateStrict})
	if err != nil {
		t.Fatal(err)
	}
	data := cat(
		attr(iflaMacsecPort, []byte{0, 1}),
		attr(iflaMacsecCipherSuite, u64(0x0080C20001000004)),
		attr(iflaMacsecICVLen, u8(16)),
		attr(iflaMacsecEncodingSA, u8(0)),
		attr(iflaMacsecEncrypt, u8(1)),
		attr(iflaMacsecProtect, u8(1)),
		attr(iflaMacsecIncSCI, u8(1)),
		attr(iflaMacsecReplayProtect, u8(1)),
		attr(iflaMacsecWindow, u32(64)),
		attr(iflaMacsecValidation, u8(2)),
	)
	want := attr(unix.IFLA_LINKINFO|unix.NLA_F_NESTED, cat(attr(unix.IFLA_INFO_KIND, []byte("macsec\x00")), attr(unix.IFLA_INFO_DATA|unix.NLA_F_NESTED, data)))
	if !bytes.Equal(want, got) {
		t.Errorf("IFLA_LINKINFO\nwant %s\ngot  %s", hex.EncodeToString(want), hex.EncodeToString(got))
	}
}

func TestEncodeSA(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 32)
	sa := SA{AN: 2, Active: true, PN: 1 << 33, Key: key, KeyID: [16]byte{1}, XPN: true, SSCI: 0x01020304, Salt: [12]byte{9}}
	ae := netlink.NewAttributeEncoder()
	encodeSA(ae, sa, true)
	got, err := ae.Encode()
	if err != nil {
		t.Fatal(err)
	}
	want := cat(
		attr(saAttrAN, u8(2)), attr(saAttrActive, u8(1)), attr(saAttrPN, u64(1<<33)), attr(saAttrKey, key),
		attr(saAttrKeyID, append([]byte{1}, make([]byte, 15)...)), attr(saAttrSSCI, []byte{1, 2, 3, 4}), attr(saAttrSalt, append([]byte{9}, make([]byte, 11)...)),
	)
	if !bytes.Equal(want, got) {
		t.Errorf("XPN SA\nwant %s\ngot  %s", hex.EncodeToString(want), hex.EncodeToString(got))
	}
	// Without XPN the PN is 32 bits, and updates carry no key.
	ae = netlink.NewAttributeEncoder()
	encodeSA(ae, SA{AN: 1, PN: 7, Key: key[:16]}, false)
	got, _ = ae.Encode()
	if want := cat(attr(saAttrAN, u8(1)), attr(saAttrActive, u8(0)), attr(saAttrPN, u32(7))); !bytes.Equal(want, got) {
		t.Errorf("SA update\nwant %s\ngot  %s", hex.EncodeToString(want), hex.EncodeToString(got))
	}
}

// TestDecodeStatus decodes a GET_TXSC reply laid out as the kernel's
// dump_secy() writes it, padding attributes included.
func TestDecodeStatus(t *testing.T) {
	sci := MakeSCI(net.HardwareAddr{2, 0, 0, 0, 0, 1}, 1)
	peer := MakeSCI(net.HardwareAddr{2, 0, 0, 0, 0, 2}, 1)
	pad := attr(14, nil)
	msg := cat(
		attr(attrIfindex, u32(7)),
		attr(attrSecy|unix.NLA_F_NESTED, cat(attr(secyAttrSCI, sci.bytes()), pad, attr(secyAttrCipherSuite, u64(uint64(GCMAES256))),
			attr(secyAttrICVLen, u8(16)), attr(secyAttrEncodingSA, u8(1)), attr(secyAttrEncrypt, u8(1)), attr(secyAttrProtect, u8(1)),
			attr(secyAttrReplay, u8(1)), attr(secyAttrWindow, u32(32)), attr(secyAttrValidate, u8(2)), attr(secyAttrIncSCI, u8(1)))),
		attr(attrTxscStats|unix.NLA_F_NESTED, cat(attr(1, u64(10)), attr(2, u64(9)), attr(5, nil))),
		attr(attrSecyStats|unix.NLA_F_NESTED, cat(attr(5, u64(3)), attr(6, u64(4)))),
		attr(attrTxsaList|unix.NLA_F_NESTED, attr(1|unix.NLA_F_NESTED, cat(attr(saAttrAN, u8(1)), attr(saAttrActive, u8(1)), attr(saAttrPN, u32(11)),
			attr(saAttrKeyID, make([]byte, 16)), attr(saAttrStats|unix.NLA_F_NESTED, cat(attr(6, u32(9)), attr(7, u32(9))))))),
		attr(attrRxscList|unix.NLA_F_NESTED, attr(1|unix.NLA_F_NESTED, cat(attr(rxscAttrSCI, peer.bytes()), attr(rxscAttrActive, u8(1)),
			attr(rxscAttrStats|unix.NLA_F_NESTED, cat(attr(5, u64(8)), attr(8, u64(2)), attr(11, nil))),
			attr(rxscAttrSAList|unix.NLA_F_NESTED, attr(1|unix.NLA_F_NESTED, cat(attr(saAttrAN, u8(1)), attr(saAttrActive, u8(1)), attr(saAttrPN, u32(9)),
				attr(saAttrStats|unix.NLA_F_NESTED, cat(attr(1, u32(8)), attr(3, u32(2)))))))))),
	)
	got, err := decodeStatus(msg)
	if legacy, _ := decodeStatus(attr(attrSecy|unix.NLA_F_NESTED, attr(secyAttrCipherSuite, u64(0x0080020001000001)))); legacy.Cipher != GCMAES128 {
		t.Errorf("the kernel's default cipher ID read as %v, want GCM-AES-128", legacy.Cipher)
	}
	if err != nil {
		t.Fatal(err)
	}
	want := &Status{
		Ifindex: 7, SCI: sci, Cipher: GCMAES256, ICVLen: 16, EncodingSA: 1, Encrypt: true, Protect: true, ReplayProtect: true, Window: 32,
		Validate: ValidateStrict, IncludeSCI: true, OutPktsProtected: 10, OutPktsEncrypted: 9, InPktsBadTag: 3, InPktsUnknownSCI: 4,
		TxSAs: []SAStatus{{AN: 1, Active: true, NextPN: 11, OutPktsProtected: 9, OutPktsEncrypted: 9}},
		RxSCs: []RxSCStatus{{SCI: peer, Active: true, InPktsOK: 8, InPktsNotValid: 2,
			SAs: []SAStatus{{AN: 1, Active: true, NextPN: 9, InPktsOK: 8, InPktsNotValid: 2}}}},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("status (-want +got):\n%s", diff)
	}
}

func TestSCIAndCiphers(t *testing.T) {
	sci := MakeSCI(net.HardwareAddr{0x52, 0x54, 0, 0x12, 0x34, 0x56}, 1)
	if sci.String() != "5254001234560001" || !bytes.Equal(sci.bytes(), []byte{0x52, 0x54, 0, 0x12, 0x34, 0x56, 0, 1}) {
		t.Errorf("SCI %s % x", sci, sci.bytes())
	}
	for name, want := range map[string]Cipher{"GCM-AES-128": GCMAES128, "gcm-aes-xpn-256": GCMAESXPN256, "GcmAesXpn128": GCMAESXPN128, "GcmAes256": GCMAES256} {
		if c, err := ParseCipher(name); err != nil || c != want {
			t.Errorf("ParseCipher(%q) = %v, %v", name, c, err)
		}
	}
	if _, err := ParseCipher("GCM-AES-512"); err == nil {
		t.Error("accepted GCM-AES-512")
	}
	if GCMAESXPN256.KeyLen() != 32 || GCMAES128.KeyLen() != 16 || !GCMAESXPN128.XPN() || GCMAES256.XPN() {
		t.Error("key lengths or XPN flags wrong")
	}
}
