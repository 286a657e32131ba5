package genl

import (
	"encoding/binary"
	"fmt"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// LinkConfig is a MACsec device on a parent interface.
type LinkConfig struct {
	Name        string
	ParentIndex int
	// Port of the SCI (1 unless several SecYs share a parent); the SCI is
	// the device's MAC address and this port.
	Port          uint16
	Cipher        Cipher
	ICVLen        uint8 // 16 by default
	Encrypt       bool  // false: integrity only
	EncodingSA    uint8 // the AN frames are sent with
	IncludeSCI    bool  // send the SCI in every SecTAG
	ReplayProtect bool
	Window        uint32 // replay window, with ReplayProtect
	Validate      Validation
}

// encodeLinkInfo builds IFLA_LINKINFO for a MACsec link: kind "macsec" and
// its IFLA_INFO_DATA, as `ip link add ... type macsec ...` sends it.
func encodeLinkInfo(c LinkConfig) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(unix.IFLA_LINKINFO, func(li *netlink.AttributeEncoder) error {
		li.String(unix.IFLA_INFO_KIND, "macsec")
		li.Nested(unix.IFLA_INFO_DATA, func(d *netlink.AttributeEncoder) error {
			port := c.Port
			if port == 0 {
				port = 1
			}
			// The port is big-endian (__be16), as in the SCI.
			d.Bytes(iflaMacsecPort, binary.BigEndian.AppendUint16(nil, port))
			cipher := c.Cipher
			if cipher == 0 {
				cipher = GCMAES128
			}
			d.Uint64(iflaMacsecCipherSuite, uint64(cipher))
			icv := c.ICVLen
			if icv == 0 {
				icv = 16
			}
			d.Uint8(iflaMacsecICVLen, icv)
			d.Uint8(iflaMacsecEncodingSA, c.EncodingSA)
			d.Uint8(iflaMacsecEncrypt, b2u(c.Encrypt))
			d.Uint8(iflaMacsecProtect, 1)
			d.Uint8(iflaMacsecIncSCI, b2u(c.IncludeSCI))
			d.Uint8(iflaMacsecReplayProtect, b2u(c.ReplayProtect))
			if c.ReplayProtect {
				d.Uint32(iflaMacsecWindow, c.Window)
			}
			d.Uint8(iflaMacsecValidation, uint8(c.Validate))
			return nil
		})
		return nil
	})
	return ae.Encode()
}

func b2u(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// ifinfomsg is struct ifinfomsg: family, pad, type, index, flags, change.
func ifinfomsg(index int32) []byte {
	b := make([]byte, unix.SizeofIfInfomsg)
	b[0] = unix.AF_UNSPEC
	binary.NativeEndian.PutUint32(b[4:], uint32(index))
	return b
}

// LinkAdd creates a MACsec device on a route netlink connection (opened in
// the namespace that should hold it): ip link add link PARENT NAME type
// macsec port P cipher C icvlen 16 encrypt on|off ...
func LinkAdd(conn *netlink.Conn, c LinkConfig) error {
	if c.Name == "" || c.ParentIndex == 0 {
		return fmt.Errorf("macsec link: name and parent are required")
	}
	ae := netlink.NewAttributeEncoder()
	ae.String(unix.IFLA_IFNAME, c.Name)
	ae.Uint32(unix.IFLA_LINK, uint32(c.ParentIndex))
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	info, err := encodeLinkInfo(c)
	if err != nil {
		return err
	}
	data := append(ifinfomsg(0), attrs...)
	data = append(data, info...)
	_, err = conn.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_NEWLINK, Flags: netlink.Request | netlink.Acknowledge | netlink.Create | netlink.Excl},
		Data:   data,
	})
	if err != nil {
		return fmt.Errorf("create MACsec device %s: %w", c.Name, err)
	}
	return nil
}

// SetEncodingSA switches the association a device sends with: ip link set
// NAME type macsec encodingsa AN. It is how a key rotation takes effect.
func SetEncodingSA(conn *netlink.Conn, ifindex int, an uint8) error {
	ae := netlink.NewAttributeEncoder()
	ae.Nested(unix.IFLA_LINKINFO, func(li *netlink.AttributeEncoder) error {
		li.String(unix.IFLA_INFO_KIND, "macsec")
		li.Nested(unix.IFLA_INFO_DATA, func(d *netlink.AttributeEncoder) error {
			d.Uint8(iflaMacsecEncodingSA, an)
			return nil
		})
		return nil
	})
	attrs, err := ae.Encode()
	if err != nil {
		return err
	}
	_, err = conn.Execute(netlink.Message{
		Header: netlink.Header{Type: unix.RTM_NEWLINK, Flags: netlink.Request | netlink.Acknowledge},
		Data:   append(ifinfomsg(int32(ifindex)), attrs...),
	})
	if err != nil {
		return fmt.Errorf("set encoding SA %d: %w", an, err)
	}
	return nil
}
