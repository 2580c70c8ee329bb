package identity

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestDiagRequestGolden(t *testing.T) {
	cases := []struct {
		name     string
		src, dst string
		want     []byte
	}{
		{"ipv4", "10.0.0.5:40000", "169.254.169.254:80", cat(
			[]byte{2, 6, 0, 0, 0xff, 0xff, 0xff, 0xff}, // AF_INET, TCP, no ext, pad, all states
			[]byte{0x9c, 0x40, 0x00, 0x50},             // ports, network order
			pad16(10, 0, 0, 5), pad16(169, 254, 169, 254),
			[]byte{0, 0, 0, 0}, // any interface
			bytes.Repeat([]byte{0xff}, 8),
		)},
		{"ipv4-mapped is ipv4", "[::ffff:10.0.0.5]:40000", "169.254.169.254:80", cat(
			[]byte{2, 6, 0, 0, 0xff, 0xff, 0xff, 0xff},
			[]byte{0x9c, 0x40, 0x00, 0x50},
			pad16(10, 0, 0, 5), pad16(169, 254, 169, 254),
			[]byte{0, 0, 0, 0}, bytes.Repeat([]byte{0xff}, 8),
		)},
		{"ipv6", "[fd00:ec2::254]:1", "[fd00:ec2::254]:80", cat(
			[]byte{10, 6, 0, 0, 0xff, 0xff, 0xff, 0xff},
			[]byte{0x00, 0x01, 0x00, 0x50},
			[]byte{0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54},
			[]byte{0xfd, 0, 0x0e, 0xc2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x02, 0x54},
			[]byte{0, 0, 0, 0}, bytes.Repeat([]byte{0xff}, 8),
		)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := diagRequest(netip.MustParseAddrPort(c.src), netip.MustParseAddrPort(c.dst))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, c.want) {
				t.Errorf("request\n got %x\nwant %x", got, c.want)
			}
		})
	}
}

func TestDiagRequestMixedFamilies(t *testing.T) {
	_, err := diagRequest(netip.MustParseAddrPort("10.0.0.5:1"), netip.MustParseAddrPort("[fd00:ec2::254]:80"))
	if err == nil || !strings.Contains(err.Error(), "different families") {
		t.Fatalf("err = %v, want different families", err)
	}
}

// answerV4 is a struct inet_diag_msg as this (little-endian) kernel sends it:
// ESTABLISHED 10.0.0.5:40000 -> 169.254.169.254:80, uid 65534, inode 123456.
var answerV4 = cat(
	[]byte{2, 1, 0, 0}, // AF_INET, TCP_ESTABLISHED, no timer, no retransmits
	[]byte{0x9c, 0x40, 0x00, 0x50},
	pad16(10, 0, 0, 5), pad16(169, 254, 169, 254),
	[]byte{0, 0, 0, 0},                         // interface
	[]byte{1, 2, 3, 4, 5, 6, 7, 8},             // cookie
	[]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, // expires, rqueue, wqueue
	[]byte{0xfe, 0xff, 0, 0},                   // uid 65534
	[]byte{0x40, 0xe2, 1, 0},                   // inode 123456
)

func TestParseDiagMsgGolden(t *testing.T) {
	if binary.NativeEndian.Uint16([]byte{1, 0}) != 1 {
		t.Skip("golden answer bytes are little-endian")
	}
	a, err := parseDiagMsg(answerV4)
	if err != nil {
		t.Fatal(err)
	}
	want := diagAnswer{Family: 2, State: 1, Src: netip.MustParseAddrPort("10.0.0.5:40000"),
		Dst: netip.MustParseAddrPort("169.254.169.254:80"), UID: 65534, Inode: 123456}
	if a != want {
		t.Fatalf("answer\n got %+v\nwant %+v", a, want)
	}
}

func TestParseDiagMsgErrors(t *testing.T) {
	if _, err := parseDiagMsg(answerV4[:71]); err == nil {
		t.Error("short answer accepted")
	}
	bad := bytes.Clone(answerV4)
	bad[0] = 1 // AF_UNIX
	if _, err := parseDiagMsg(bad); err == nil {
		t.Error("unknown family accepted")
	}
}

func TestDiagAnswerCheck(t *testing.T) {
	ap := netip.MustParseAddrPort
	asked := struct{ src, dst netip.AddrPort }{ap("10.0.0.5:40000"), ap("169.254.169.254:80")}
	cases := []struct {
		name     string
		src, dst netip.AddrPort
		ok       bool
	}{
		{"exact", ap("10.0.0.5:40000"), ap("169.254.169.254:80"), true},
		{"ipv4-mapped answer", ap("[::ffff:10.0.0.5]:40000"), ap("[::ffff:169.254.169.254]:80"), true},
		{"same ports, other source address", ap("10.0.0.6:40000"), ap("169.254.169.254:80"), false},
		{"same ports, other destination address", ap("10.0.0.5:40000"), ap("169.254.169.253:80"), false},
		{"other source port", ap("10.0.0.5:40001"), ap("169.254.169.254:80"), false},
		{"listener fall-back", ap("10.0.0.5:40000"), ap("0.0.0.0:0"), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := diagAnswer{Src: c.src, Dst: c.dst}.check(asked.src, asked.dst)
			if c.ok != (err == nil) || (err != nil && !errors.Is(err, errMismatch)) {
				t.Fatalf("check = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func TestOwnerAttested(t *testing.T) {
	cases := []struct {
		name         string
		state, timer uint8
		ok           bool
	}{
		{"established", 1, 0, true},
		{"orphan in FIN_WAIT1, retransmitting", 4, 1, true},
		{"time-wait", 6, 3, false},
		{"time-wait minisocket keeping FIN_WAIT2", 5, 3, false},
		{"request socket", 12, 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := diagAnswer{State: c.state, Timer: c.timer}.ownerAttested()
			if c.ok != (err == nil) {
				t.Fatalf("ownerAttested = %v, want ok=%v", err, c.ok)
			}
		})
	}
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func pad16(b ...byte) []byte { return append(b, make([]byte, 16-len(b))...) }
