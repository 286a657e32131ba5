package genl

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// SA is a secure association: one key (SAK) on one association number.
type SA struct {
	AN     uint8 // association number, 0-3
	Active bool
	PN     uint64 // next packet number (the lowest accepted, on receive)
	Key    []byte // SAK: 16 or 32 bytes; never printed
	KeyID  [KeyIDLen]byte
	// XPN suites only: the short SCI and the salt.
	XPN  bool
	SSCI uint32
	Salt [SaltLen]byte
}

// encodeSA writes MACSEC_ATTR_SA_CONFIG's attributes.
func encodeSA(ae *netlink.AttributeEncoder, sa SA, withKey bool) {
	ae.Uint8(saAttrAN, sa.AN)
	ae.Uint8(saAttrActive, b2u(sa.Active))
	if sa.PN != 0 {
		if sa.XPN {
			ae.Uint64(saAttrPN, sa.PN)
		} else {
			ae.Uint32(saAttrPN, uint32(sa.PN))
		}
	}
	if withKey {
		ae.Bytes(saAttrKey, sa.Key)
		ae.Bytes(saAttrKeyID, sa.KeyID[:])
		if sa.XPN {
			// The SSCI is big-endian on the wire and in the kernel (ssci_t).
			ae.Bytes(saAttrSSCI, binary.BigEndian.AppendUint32(nil, sa.SSCI))
			ae.Bytes(saAttrSalt, sa.Salt[:])
		}
	}
}

// Client talks to the kernel's macsec generic netlink family. Open it in
// the namespace that holds the devices (see lab.macsecClient).
type Client struct {
	c      *genetlink.Conn
	family genetlink.Family
}

// Dial opens the macsec family on a generic netlink socket of the calling
// thread's namespace.
func Dial() (*Client, error) {
	c, err := genetlink.Dial(nil)
	if err != nil {
		return nil, err
	}
	f, err := c.GetFamily(genlName)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("generic netlink family %q (is the macsec module loaded?): %w", genlName, err)
	}
	return &Client{c: c, family: f}, nil
}

// Close closes the socket.
func (cl *Client) Close() error { return cl.c.Close() }

func (cl *Client) do(cmd uint8, flags netlink.HeaderFlags, fn func(ae *netlink.AttributeEncoder)) ([]genetlink.Message, error) {
	ae := netlink.NewAttributeEncoder()
	fn(ae)
	data, err := ae.Encode()
	if err != nil {
		return nil, err
	}
	return cl.c.Execute(genetlink.Message{Header: genetlink.Header{Command: cmd, Version: genlVersion}, Data: data}, cl.family.ID, flags)
}

func (cl *Client) config(cmd uint8, what string, fn func(ae *netlink.AttributeEncoder)) error {
	if _, err := cl.do(cmd, netlink.Request|netlink.Acknowledge, fn); err != nil {
		return fmt.Errorf("macsec %s: %w", what, err)
	}
	return nil
}

// AddTxSA adds a transmit SA: ip macsec add DEV tx sa AN pn PN on key ID KEY.
func (cl *Client) AddTxSA(ifindex int, sa SA) error {
	return cl.config(cmdAddTxSA, fmt.Sprintf("add tx sa %d", sa.AN), func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrIfindex, uint32(ifindex))
		ae.Nested(attrSAConfig, func(n *netlink.AttributeEncoder) error { encodeSA(n, sa, true); return nil })
	})
}

// UpdTxSA changes a transmit SA's state (on/off) or next PN.
func (cl *Client) UpdTxSA(ifindex int, sa SA) error {
	return cl.config(cmdUpdTxSA, fmt.Sprintf("set tx sa %d", sa.AN), func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrIfindex, uint32(ifindex))
		ae.Nested(attrSAConfig, func(n *netlink.AttributeEncoder) error { encodeSA(n, sa, false); return nil })
	})
}

// DelTxSA deletes a transmit SA: ip macsec del DEV tx sa AN.
func (cl *Client) DelTxSA(ifindex int, an uint8) error {
	return cl.config(cmdDelTxSA, fmt.Sprintf("del tx sa %d", an), func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrIfindex, uint32(ifindex))
		ae.Nested(attrSAConfig, func(n *netlink.AttributeEncoder) error { n.Uint8(saAttrAN, an); return nil })
	})
}

func encodeRxSC(ae *netlink.AttributeEncoder, sci SCI, active bool) {
	ae.Nested(attrRxscConfig, func(n *netlink.AttributeEncoder) error {
		n.Bytes(rxscAttrSCI, sci.bytes())
		n.Uint8(rxscAttrActive, b2u(active))
		return nil
	})
}

// AddRxSC adds a receive channel for a peer: ip macsec add DEV rx sci SCI on.
func (cl *Client) AddRxSC(ifindex int, sci SCI) error {
	return cl.config(cmdAddRxSC, "add rx sc "+sci.String(), func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrIfindex, uint32(ifindex))
		encodeRxSC(ae, sci, true)
	})
}

// AddRxSA adds a receive SA to a peer's channel: ip macsec add DEV rx sci
// SCI sa AN pn PN on key ID KEY.
func (cl *Client) AddRxSA(ifindex int, sci SCI, sa SA) error {
	return cl.config(cmdAddRxSA, fmt.Sprintf("add rx sci %s sa %d", sci, sa.AN), func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrIfindex, uint32(ifindex))
		ae.Nested(attrRxscConfig, func(n *netlink.AttributeEncoder) error { n.Bytes(rxscAttrSCI, sci.bytes()); return nil })
		ae.Nested(attrSAConfig, func(n *netlink.AttributeEncoder) error { encodeSA(n, sa, true); return nil })
	})
}

// UpdRxSA changes a receive SA's state or lowest PN.
func (cl *Client) UpdRxSA(ifindex int, sci SCI, sa SA) error {
	return cl.config(cmdUpdRxSA, fmt.Sprintf("set rx sci %s sa %d", sci, sa.AN), func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrIfindex, uint32(ifindex))
		ae.Nested(attrRxscConfig, func(n *netlink.AttributeEncoder) error { n.Bytes(rxscAttrSCI, sci.bytes()); return nil })
		ae.Nested(attrSAConfig, func(n *netlink.AttributeEncoder) error { encodeSA(n, sa, false); return nil })
	})
}

// DelRxSA deletes a receive SA.
func (cl *Client) DelRxSA(ifindex int, sci SCI, an uint8) error {
	return cl.config(cmdDelRxSA, fmt.Sprintf("del rx sci %s sa %d", sci, an), func(ae *netlink.AttributeEncoder) {
		ae.Uint32(attrIfindex, uint32(ifindex))
		ae.Nested(attrRxscConfig, func(n *netlink.AttributeEncoder) error { n.Bytes(rxscAttrSCI, sci.bytes()); return nil })
		ae.Nested(attrSAConfig, func(n *netlink.AttributeEncoder) error { n.Uint8(saAttrAN, an); return nil })
	})
}

// Status is a MACsec device as `ip -s macsec show` reports it. Keys are
// never read back (the kernel does not give them out).
type Status struct {
	Ifindex       int
	SCI           SCI
	Cipher        Cipher
	ICVLen        uint8
	EncodingSA    uint8
	Encrypt       bool
	Protect       bool
	ReplayProtect bool
	Window        uint32
	Validate      Validation
	IncludeSCI    bool
	TxSAs         []SAStatus
	RxSCs         []RxSCStatus
	// TX channel counters (MACSEC_TXSC_STATS).
	OutPktsProtected, OutPktsEncrypted, OutOctetsProtected, OutOctetsEncrypted uint64
	// SecY counters (MACSEC_SECY_STATS).
	OutPktsUntagged, InPktsUntagged, OutPktsTooLong, InPktsNoTag, InPktsBadTag, InPktsUnknownSCI, InPktsNoSCI, InPktsOverrun uint64
}

// SAStatus is one SA of a status.
type SAStatus struct {
	AN     uint8
	Active bool
	NextPN uint64
	KeyID  [KeyIDLen]byte
	// Per-SA counters.
	InPktsOK, InPktsInvalid, InPktsNotValid, InPktsNotUsingSA, InPktsUnusedSA, OutPktsProtected, OutPktsEncrypted uint32
}

// RxSCStatus is one receive channel of a status.
type RxSCStatus struct {
	SCI    SCI
	Active bool
	SAs    []SAStatus
	// Per-channel counters.
	InOctetsValidated, InOctetsDecrypted, InPktsUnchecked, InPktsDelayed, InPktsOK, InPktsInvalid, InPktsLate, InPktsNotValid, InPktsNotUsingSA, InPktsUnusedSA uint64
}

// Status dumps every MACsec device of the namespace and returns the one
// with the given index: ip -s macsec show DEV.
func (cl *Client) Status(ifindex int) (*Status, error) {
	msgs, err := cl.do(cmdGetTxSC, netlink.Request|netlink.Dump, func(*netlink.AttributeEncoder) {})
	if err != nil {
		return nil, fmt.Errorf("macsec show: %w", err)
	}
	for _, m := range msgs {
		st, err := decodeStatus(m.Data)
		if err != nil {
			return nil, err
		}
		if st.Ifindex == ifindex {
			return st, nil
		}
	}
	return nil, fmt.Errorf("macsec show: index %d: %w", ifindex, ErrNoDevice)
}

// ErrNoDevice is returned by Status for an index that is not MACsec.
var ErrNoDevice = errors.New("no such MACsec device")

func decodeStatus(b []byte) (*Status, error) {
	ad, err := netlink.NewAttributeDecoder(b)
	if err != nil {
		return nil, err
	}
	st := &Status{}
	for ad.Next() {
		switch ad.Type() {
		case attrIfindex:
			st.Ifindex = int(ad.Uint32())
		case attrSecy:
			ad.Nested(func(n *netlink.AttributeDecoder) error { decodeSecy(n, st); return nil })
		case attrTxscStats:
			ad.Nested(func(n *netlink.AttributeDecoder) error {
				for n.Next() {
					set64(n, map[uint16]*uint64{1: &st.OutPktsProtected, 2: &st.OutPktsEncrypted, 3: &st.OutOctetsProtected, 4: &st.OutOctetsEncrypted})
				}
				return nil
			})
		case attrSecyStats:
			ad.Nested(func(n *netlink.AttributeDecoder) error {
				for n.Next() {
					set64(n, map[uint16]*uint64{1: &st.OutPktsUntagged, 2: &st.InPktsUntagged, 3: &st.OutPktsTooLong, 4: &st.InPktsNoTag,
						5: &st.InPktsBadTag, 6: &st.InPktsUnknownSCI, 7: &st.InPktsNoSCI, 8: &st.InPktsOverrun})
				}
				return nil
			})
		case attrTxsaList:
			ad.Nested(func(n *netlink.AttributeDecoder) error {
				for n.Next() {
					n.Nested(func(sa *netlink.AttributeDecoder) error {
						st.TxSAs = append(st.TxSAs, decodeSA(sa))
						return nil
					})
				}
				return nil
			})
		case attrRxscList:
			ad.Nested(func(n *netlink.AttributeDecoder) error {
				for n.Next() {
					n.Nested(func(sc *netlink.AttributeDecoder) error {
						st.RxSCs = append(st.RxSCs, decodeRxSC(sc))
						return nil
					})
				}
				return nil
			})
		}
	}
	return st, ad.Err()
}

func decodeSecy(n *netlink.AttributeDecoder, st *Status) {
	for n.Next() {
		switch n.Type() {
		case secyAttrSCI:
			st.SCI = sciFromBytes(n.Bytes())
		case secyAttrEncodingSA:
			st.EncodingSA = n.Uint8()
		case secyAttrWindow:
			st.Window = n.Uint32()
		case secyAttrCipherSuite:
			st.Cipher = Cipher(n.Uint64())
			if st.Cipher == defaultCipherID {
				st.Cipher = GCMAES128
			}
		case secyAttrICVLen:
			st.ICVLen = n.Uint8()
		case secyAttrProtect:
			st.Protect = n.Uint8() == 1
		case secyAttrReplay:
			st.ReplayProtect = n.Uint8() == 1
		case secyAttrValidate:
			st.Validate = Validation(n.Uint8())
		case secyAttrEncrypt:
			st.Encrypt = n.Uint8() == 1
		case secyAttrIncSCI:
			st.IncludeSCI = n.Uint8() == 1
		}
	}
}

func decodeSA(n *netlink.AttributeDecoder) SAStatus {
	var sa SAStatus
	for n.Next() {
		switch n.Type() {
		case saAttrAN:
			sa.AN = n.Uint8()
		case saAttrActive:
			sa.Active = n.Uint8() == 1
		case saAttrPN:
			if len(n.Bytes()) == 8 {
				sa.NextPN = n.Uint64()
			} else {
				sa.NextPN = uint64(n.Uint32())
			}
		case saAttrKeyID:
			copy(sa.KeyID[:], n.Bytes())
		case saAttrStats:
			n.Nested(func(s *netlink.AttributeDecoder) error {
				for s.Next() {
					set32(s, map[uint16]*uint32{1: &sa.InPktsOK, 2: &sa.InPktsInvalid, 3: &sa.InPktsNotValid, 4: &sa.InPktsNotUsingSA,
						5: &sa.InPktsUnusedSA, 6: &sa.OutPktsProtected, 7: &sa.OutPktsEncrypted})
				}
				return nil
			})
		}
	}
	return sa
}

func decodeRxSC(n *netlink.AttributeDecoder) RxSCStatus {
	var sc RxSCStatus
	for n.Next() {
		switch n.Type() {
		case rxscAttrSCI:
			sc.SCI = sciFromBytes(n.Bytes())
		case rxscAttrActive:
			sc.Active = n.Uint8() == 1
		case rxscAttrStats:
			n.Nested(func(s *netlink.AttributeDecoder) error {
				for s.Next() {
					set64(s, map[uint16]*uint64{1: &sc.InOctetsValidated, 2: &sc.InOctetsDecrypted, 3: &sc.InPktsUnchecked, 4: &sc.InPktsDelayed,
						5: &sc.InPktsOK, 6: &sc.InPktsInvalid, 7: &sc.InPktsLate, 8: &sc.InPktsNotValid, 9: &sc.InPktsNotUsingSA, 10: &sc.InPktsUnusedSA})
				}
				return nil
			})
		case rxscAttrSAList:
			n.Nested(func(l *netlink.AttributeDecoder) error {
				for l.Next() {
					l.Nested(func(sa *netlink.AttributeDecoder) error { sc.SAs = append(sc.SAs, decodeSA(sa)); return nil })
				}
				return nil
			})
		}
	}
	return sc
}

// set64 stores a u64 counter by attribute type; padding attributes and
// counters newer than this code are skipped.
func set64(n *netlink.AttributeDecoder, fields map[uint16]*uint64) {
	if p, ok := fields[n.Type()]; ok && len(n.Bytes()) == 8 {
		*p = n.Uint64()
	}
}

func set32(n *netlink.AttributeDecoder, fields map[uint16]*uint32) {
	if p, ok := fields[n.Type()]; ok && len(n.Bytes()) == 4 {
		*p = n.Uint32()
	}
}
