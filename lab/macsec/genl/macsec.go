// Package genl configures Linux MACsec (IEEE 802.1AE) over netlink: the
// device through rtnetlink (IFLA_MACSEC_*), secure channels and associations
// through the generic netlink "macsec" family. No Go netlink library has
// MACsec, so the attribute layout here follows include/uapi/linux/if_macsec.h
// and if_link.h; names follow iproute2's `ip macsec`.
package genl

import (
	"encoding/binary"
	"fmt"
	"net"
	"strings"
)

// The generic netlink family.
const (
	genlName    = "macsec"
	genlVersion = 1
)

// Cipher is a MACsec cipher suite identifier (IEEE 802.1AE).
type Cipher uint64

// Cipher suites.
const (
	GCMAES128    Cipher = 0x0080C20001000001
	GCMAES256    Cipher = 0x0080C20001000002
	GCMAESXPN128 Cipher = 0x0080C20001000003
	GCMAESXPN256 Cipher = 0x0080C20001000004
	// defaultCipherID (MACSEC_DEFAULT_CIPHER_ID) is how the kernel reports a
	// device made with GCM-AES-128: the same suite under its older ID.
	defaultCipherID Cipher = 0x0080020001000001
)

var cipherNames = map[Cipher]string{
	GCMAES128: "GCM-AES-128", GCMAES256: "GCM-AES-256", GCMAESXPN128: "GCM-AES-XPN-128", GCMAESXPN256: "GCM-AES-XPN-256",
}

func (c Cipher) String() string {
	if n, ok := cipherNames[c]; ok {
		return n
	}
	return fmt.Sprintf("cipher %#x", uint64(c))
}

// KeyLen is the SAK length the suite needs, in bytes.
func (c Cipher) KeyLen() int {
	if c == GCMAES256 || c == GCMAESXPN256 {
		return 32
	}
	return 16
}

// XPN reports an extended-packet-number suite (64-bit PN, SSCI and salt).
func (c Cipher) XPN() bool { return c == GCMAESXPN128 || c == GCMAESXPN256 }

// ParseCipher reads a suite name as `ip macsec` and ExpressRoute write it:
// GCM-AES-128, gcm-aes-xpn-256, GcmAesXpn256, ...
func ParseCipher(s string) (Cipher, error) {
	norm := strings.NewReplacer("-", "", "_", "").Replace(strings.ToLower(s))
	for c, n := range cipherNames {
		if strings.ReplaceAll(strings.ToLower(n), "-", "") == norm {
			return c, nil
		}
	}
	return 0, fmt.Errorf("unknown MACsec cipher suite %q (GCM-AES-128, GCM-AES-256, GCM-AES-XPN-128, GCM-AES-XPN-256)", s)
}

// Validation is what a receiver does with frames that fail validation.
type Validation uint8

// Validation modes (IFLA_MACSEC_VALIDATION).
const (
	ValidateDisabled Validation = 0
	ValidateCheck    Validation = 1
	ValidateStrict   Validation = 2
)

// SCI is a secure channel identifier: the sender's MAC address and a port.
type SCI uint64

// MakeSCI builds an SCI from a MAC address and a port number.
func MakeSCI(mac net.HardwareAddr, port uint16) SCI {
	var b [8]byte
	copy(b[:6], mac)
	binary.BigEndian.PutUint16(b[6:], port)
	return SCI(binary.BigEndian.Uint64(b[:]))
}

// String prints an SCI as `ip macsec show` does: 16 hex digits.
func (s SCI) String() string { return fmt.Sprintf("%016x", uint64(s)) }

// bytes is the SCI as the kernel keeps it (sci_t is big-endian), which is
// how it travels in a u64 attribute.
func (s SCI) bytes() []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, uint64(s))
	return b
}

func sciFromBytes(b []byte) SCI {
	if len(b) < 8 {
		return 0
	}
	return SCI(binary.BigEndian.Uint64(b))
}

// generic netlink attributes and commands, from if_macsec.h.
const (
	attrIfindex    = 1
	attrRxscConfig = 2
	attrSAConfig   = 3
	attrSecy       = 4
	attrTxsaList   = 5
	attrRxscList   = 6
	attrTxscStats  = 7
	attrSecyStats  = 8

	secyAttrSCI         = 1
	secyAttrEncodingSA  = 2
	secyAttrWindow      = 3
	secyAttrCipherSuite = 4
	secyAttrICVLen      = 5
	secyAttrProtect     = 6
	secyAttrReplay      = 7
	secyAttrOper        = 8
	secyAttrValidate    = 9
	secyAttrEncrypt     = 10
	secyAttrIncSCI      = 11

	rxscAttrSCI    = 1
	rxscAttrActive = 2
	rxscAttrSAList = 3
	rxscAttrStats  = 4

	saAttrAN     = 1
	saAttrActive = 2
	saAttrPN     = 3
	saAttrKey    = 4
	saAttrKeyID  = 5
	saAttrStats  = 6
	saAttrSSCI   = 8
	saAttrSalt   = 9

	cmdGetTxSC = 0
	cmdAddRxSC = 1
	cmdDelRxSC = 2
	cmdAddTxSA = 4
	cmdDelTxSA = 5
	cmdUpdTxSA = 6
	cmdAddRxSA = 7
	cmdDelRxSA = 8
	cmdUpdRxSA = 9
)

// rtnetlink attributes of a MACsec link (IFLA_INFO_DATA), from if_link.h.
const (
	iflaMacsecSCI           = 1
	iflaMacsecPort          = 2
	iflaMacsecICVLen        = 3
	iflaMacsecCipherSuite   = 4
	iflaMacsecWindow        = 5
	iflaMacsecEncodingSA    = 6
	iflaMacsecEncrypt       = 7
	iflaMacsecProtect       = 8
	iflaMacsecIncSCI        = 9
	iflaMacsecReplayProtect = 12
	iflaMacsecValidation    = 13
)

// Key lengths and limits.
const (
	KeyIDLen = 16
	SaltLen  = 12
)
