package identity

import (
	"net/netip"
	"testing"

	"github.com/imdsguard/imdsguard/internal/imds"
)

func TestClassify(t *testing.T) {
	ap := func(s string) netip.AddrPort {
		if s == "" {
			return netip.AddrPort{}
		}
		return netip.MustParseAddrPort(s)
	}
	cases := []struct {
		name           string
		local, origDst string
		want           Class
	}{
		{"OUTPUT redirect lands on loopback", "127.0.0.1:8080", "169.254.169.254:80", Host},
		{"OUTPUT redirect, IPv6", "[::1]:8080", "[fd00:ec2::254]:80", Host},
		{"OUTPUT redirect on a dual-stack listener", "[::ffff:127.0.0.1]:8080", "169.254.169.254:80", Host},
		{"direct local caller", "127.0.0.1:8080", "", Host},
		{"PREROUTING redirect lands on the interface address", "172.17.0.1:8080", "169.254.169.254:80", Container},
		{"PREROUTING redirect, IPv6", "[fd00:172:17::1]:8080", "[fd00:ec2::254]:80", Container},
		{"PREROUTING redirect, dual-stack listener", "[::ffff:172.17.0.1]:8080", "169.254.169.254:80", Container},
		{"NAT'd to the proxy from elsewhere", "172.17.0.1:8080", "10.1.2.3:80", Host},
		{"direct caller on a non-loopback address", "172.17.0.1:8080", "", Host},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := classify(ap(c.local), ap(c.origDst), imds.Addrs()); got != c.want {
				t.Fatalf("classify = %s, want %s", got, c.want)
			}
		})
	}
}
