package identity

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
)

// TestDiagNetlinkMessageGolden checks the whole netlink message: header type
// SOCK_DIAG_BY_FAMILY and flags NLM_F_REQUEST alone (0x0001; a dump would be
// 0x0301), then the exact request.
func TestDiagNetlinkMessageGolden(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("golden header bytes are little-endian")
	}
	req, err := newDiagRequest(netip.MustParseAddrPort("10.0.0.5:40000"), netip.MustParseAddrPort("169.254.169.254:80"))
	if err != nil {
		t.Fatal(err)
	}
	req.Seq = 7
	want := cat(
		[]byte{72, 0, 0, 0}, // length: 16-byte header + 56-byte request
		[]byte{20, 0},       // SOCK_DIAG_BY_FAMILY
		[]byte{1, 0},        // NLM_F_REQUEST, no NLM_F_DUMP
		[]byte{7, 0, 0, 0},  // sequence
		[]byte{0, 0, 0, 0},  // port id: the kernel fills it in
		[]byte{2, 6, 0, 0, 0xff, 0xff, 0xff, 0xff},
		[]byte{0x9c, 0x40, 0x00, 0x50},
		pad16(10, 0, 0, 5), pad16(169, 254, 169, 254),
		[]byte{0, 0, 0, 0}, bytes.Repeat([]byte{0xff}, 8),
	)
	if got := req.Serialize(); !bytes.Equal(got, want) {
		t.Fatalf("message\n got %x\nwant %x", got, want)
	}
}
