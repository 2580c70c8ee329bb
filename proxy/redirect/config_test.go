package redirect

import (
	"errors"
	"slices"
	"testing"

	"github.com/imdsguard/imdsguard/proxy/config/field"
)

func TestDefaultConfig(t *testing.T) {
	c := DefaultConfig()
	if !c.IPv4 || !c.IPv6 || !c.KeepOnExit {
		t.Errorf("defaults must redirect both families and keep rules on exit: %+v", c)
	}
	if want := []string{"docker0", "br-+", "cni+", "veth+"}; !slices.Equal(c.ContainerInterfaces, want) {
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
// matches), ordered by index.
func TestContainerLinks(t *testing.T) {
	all := []Link{{Name: "veth9", Index: 9}, {Name: "eth0", Index: 2}, {Name: "docker0", Index: 3}, {Name: "docker01", Index: 4}, {Name: "br-1a2b", Index: 5}, {Name: "lo", Index: 1}}
	for _, tc := range []struct {
		patterns []string
		want     []string
	}{
		{nil, nil},
		{DefaultConfig().ContainerInterfaces, []string{"docker0", "br-1a2b", "veth9"}},
		{[]string{"docker0"}, []string{"docker0"}},
		{[]string{"docker+"}, []string{"docker0", "docker01"}},
		{[]string{"+"}, []string{"lo", "eth0", "docker0", "docker01", "br-1a2b", "veth9"}},
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
