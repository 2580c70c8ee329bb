package redirect

import (
	"errors"
	"slices"
	"testing"

	"github.com/imdsguard/imdsguard/internal/config/field"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if !c.IPv4 || !c.IPv6 || !c.KeepOnExit {
		t.Errorf("defaults must redirect both families and keep rules on exit: %+v", c)
	}
	if want := []string{"+"}; !slices.Equal(c.ContainerInterfaces, want) {
		t.Errorf("container_interfaces = %v, want %v", c.ContainerInterfaces, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*Config)
		paths []string // field paths of the expected errors, in order
	}{
		{"defaults", func(*Config) {}, nil},
		{"no interfaces is fine", func(c *Config) { c.ContainerInterfaces = nil }, nil},
		{"ipv6 only", func(c *Config) { c.IPv4 = false }, nil},
		{"wildcard all", func(c *Config) { c.ContainerInterfaces = []string{"+"} }, nil},
		{"both families off (no kernel rules)", func(c *Config) { c.IPv4, c.IPv6 = false, false }, nil},
		{"empty name", func(c *Config) { c.ContainerInterfaces = []string{"docker0", ""} }, []string{"container_interfaces[1]"}},
		{"too long", func(c *Config) { c.ContainerInterfaces = []string{"abcdefghijklmnop"} }, []string{"container_interfaces[0]"}},
		{"15 chars is fine", func(c *Config) { c.ContainerInterfaces = []string{"abcdefghijklmn+"} }, nil},
		{"plus inside", func(c *Config) { c.ContainerInterfaces = []string{"ve+th"} }, []string{"container_interfaces[0]"}},
		{"negation", func(c *Config) { c.ContainerInterfaces = []string{"!eth0"} }, []string{"container_interfaces[0]"}},
		{"slash", func(c *Config) { c.ContainerInterfaces = []string{"a/b"} }, []string{"container_interfaces[0]"}},
		{"space", func(c *Config) { c.ContainerInterfaces = []string{"a b"} }, []string{"container_interfaces[0]"}},
		{"quote", func(c *Config) { c.ContainerInterfaces = []string{`a"b`} }, []string{"container_interfaces[0]"}},
		{"dot", func(c *Config) { c.ContainerInterfaces = []string{".."} }, []string{"container_interfaces[0]"}},
		{"ip link's @peer", func(c *Config) { c.ContainerInterfaces = []string{"veth1@if3"} }, []string{"container_interfaces[0]"}},
		{"glob star", func(c *Config) { c.ContainerInterfaces = []string{"veth*"} }, []string{"container_interfaces[0]"}},
		{"duplicate", func(c *Config) { c.ContainerInterfaces = []string{"cni+", "docker0", "cni+"} }, []string{"container_interfaces[2]"}},
		{"landing defaults spelled out", func(c *Config) { c.LandingIPv4, c.LandingIPv6 = "169.254.254.169", "fd69:6d64:7367::254" }, nil},
		{"landing empty means default", func(c *Config) { c.LandingIPv4, c.LandingIPv6 = "", "" }, nil},
		{"landing elsewhere in link-local", func(c *Config) { c.LandingIPv4, c.LandingIPv6 = "169.254.77.1", "fdab:cdef:1234::1" }, nil},
		{"landing v4 not an address", func(c *Config) { c.LandingIPv4 = "169.254.1" }, []string{"landing_ipv4"}},
		{"landing v4 is v6", func(c *Config) { c.LandingIPv4 = "fd69::1" }, []string{"landing_ipv4"}},
		{"landing v4 not link-local", func(c *Config) { c.LandingIPv4 = "10.0.0.1" }, []string{"landing_ipv4"}},
		{"landing v4 is IMDS", func(c *Config) { c.LandingIPv4 = "169.254.169.254" }, []string{"landing_ipv4"}},
		{"landing v4 AWS DNS", func(c *Config) { c.LandingIPv4 = "169.254.169.253" }, []string{"landing_ipv4"}},
		{"landing v4 pods' gateway", func(c *Config) { c.LandingIPv4 = "169.254.1.1" }, []string{"landing_ipv4"}},
		{"landing v4 ECS", func(c *Config) { c.LandingIPv4 = "169.254.170.2" }, []string{"landing_ipv4"}},
		{"landing v4 VPC CNI egress", func(c *Config) { c.LandingIPv4 = "169.254.173.9" }, []string{"landing_ipv4"}},
		{"landing v4 RFC 3927 reserved", func(c *Config) { c.LandingIPv4 = "169.254.255.1" }, []string{"landing_ipv4"}},
		{"landing v6 is v4", func(c *Config) { c.LandingIPv6 = "169.254.254.169" }, []string{"landing_ipv6"}},
		{"landing v6 mapped v4", func(c *Config) { c.LandingIPv6 = "::ffff:169.254.254.169" }, []string{"landing_ipv6"}},
		{"landing v6 not ULA", func(c *Config) { c.LandingIPv6 = "2001:db8::1" }, []string{"landing_ipv6"}},
		{"landing v6 in AWS's /64", func(c *Config) { c.LandingIPv6 = "fd00:ec2::23" }, []string{"landing_ipv6"}},
		{"landing v6 with zone", func(c *Config) { c.LandingIPv6 = "fd69::1%lo" }, []string{"landing_ipv6"}},
		{
			"all problems joined",
			func(c *Config) { c.IPv4, c.IPv6 = false, false; c.ContainerInterfaces = []string{"", "x:y"} },
			[]string{"container_interfaces[0]", "container_interfaces[1]"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			tc.edit(&c)
			var got []string
			for _, e := range field.Split(c.Validate()) {
				var fe *field.Error
				if !errors.As(e, &fe) {
					t.Fatalf("error %v is not a *field.Error", e)
				}
				got = append(got, fe.Path)
			}
			if !slices.Equal(got, tc.paths) {
				t.Errorf("error paths = %q, want %q (%v)", got, tc.paths, c.Validate())
			}
		})
	}
}

// containerLinks keeps the links some pattern matches (package ifname
// matches), ordered by index; never lo.
func TestContainerLinks(t *testing.T) {
	all := []Link{{Name: "veth9", Index: 9}, {Name: "eth0", Index: 2}, {Name: "docker0", Index: 3}, {Name: "docker01", Index: 4}, {Name: "br-1a2b", Index: 5}, {Name: "lo", Index: 1}}
	for _, tc := range []struct {
		patterns []string
		want     []string
	}{
		{nil, nil},
		{[]string{"docker0", "br-+", "cni+", "veth+"}, []string{"docker0", "br-1a2b", "veth9"}},
		{[]string{"docker0"}, []string{"docker0"}},
		{[]string{"docker+"}, []string{"docker0", "docker01"}},
		{[]string{"+"}, []string{"eth0", "docker0", "docker01", "br-1a2b", "veth9"}}, // every one but lo (the default)
		{[]string{"lo"}, nil}, // lo is never a container's interface
		{[]string{"vet"}, nil},
	} {
		var got []string
		for _, l := range containerLinks(all, Config{ContainerInterfaces: tc.patterns}.interfaces()) {
			got = append(got, l.Name)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("containerLinks(%q) = %q, want %q", tc.patterns, got, tc.want)
		}
	}
}
