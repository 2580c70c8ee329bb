package identity

import (
	"encoding/binary"
	"fmt"
	"net/netip"
)

// soOriginalDst is SO_ORIGINAL_DST (SOL_IP) and IP6T_SO_ORIGINAL_DST
// (SOL_IPV6): conntrack's original destination of a NAT'd connection.
const soOriginalDst = 80

// parseSockaddr reads the struct sockaddr_in or sockaddr_in6 that
// SO_ORIGINAL_DST fills in (family in host order, port in network order).
func parseSockaddr(b []byte) (netip.AddrPort, error) {
	if len(b) < 2 {
		return netip.AddrPort{}, fmt.Errorf("parse original destination: %d bytes", len(b))
	}
	switch family := binary.NativeEndian.Uint16(b); {
	case family == afInet && len(b) >= 8:
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(b[4:8])), binary.BigEndian.Uint16(b[2:])), nil
	case family == afInet6 && len(b) >= 24:
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(b[8:24])), binary.BigEndian.Uint16(b[2:])), nil
	default:
		return netip.AddrPort{}, fmt.Errorf("parse original destination: family %d in %d bytes", family, len(b))
	}
}
