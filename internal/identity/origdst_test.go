package identity

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

func TestParseSockaddr(t *testing.T) {
	v4 := make([]byte, 16) // struct sockaddr_in
	binary.NativeEndian.PutUint16(v4, afInet)
	copy(v4[2:], []byte{0x00, 0x50, 169, 254, 169, 254})
	v6 := make([]byte, 28) // struct sockaddr_in6
	binary.NativeEndian.PutUint16(v6, afInet6)
	copy(v6[2:], []byte{0x00, 0x50})
	copy(v6[8:], []byte{0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54})
	cases := []struct {
		name string
		b    []byte
		want string // "" for an error
	}{
		{"ipv4", v4, "169.254.169.254:80"},
		{"ipv6", v6, "[fd00:ec2::254]:80"},
		{"ipv6 truncated", v6[:20], ""},
		{"empty", nil, ""},
		{"unknown family", []byte{1, 0, 0, 0, 0, 0, 0, 0}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseSockaddr(c.b)
			if c.want == "" {
				if err == nil {
					t.Fatalf("parsed %s, want an error", got)
				}
				return
			}
			if err != nil || got != netip.MustParseAddrPort(c.want) {
				t.Fatalf("parseSockaddr = %s, %v; want %s", got, err, c.want)
			}
		})
	}
}
