// Package imds holds the facts of the instance metadata service's protocol
// that imdsguard relies on: its addresses and port, the token path, the
// header names and the token TTL bounds. Every other package names them from
// here; this package imports nothing of imdsguard's.
package imds

import (
	"net/netip"
	"time"
)

// The metadata service's addresses and port.
var (
	IPv4 = netip.MustParseAddr("169.254.169.254")
	IPv6 = netip.MustParseAddr("fd00:ec2::254")
)

const (
	// Port is the metadata service's TCP port.
	Port = 80
	// Host is the IPv4 address as it stands in a URL or a Host header.
	Host = "169.254.169.254"
	// HostIPv6 is the IPv6 address as it stands in a URL or a Host header.
	HostIPv6 = "[fd00:ec2::254]"
	// URL is the metadata service's base URL (IPv4).
	URL = "http://" + Host
)

// Addrs are the metadata service's addresses, IPv4 first.
func Addrs() []netip.Addr { return []netip.Addr{IPv4, IPv6} }

// IsAddr reports whether a is one of the metadata service's addresses
// (IPv4-mapped IPv6 counts as IPv4).
func IsAddr(a netip.Addr) bool {
	a = a.Unmap()
	return a == IPv4 || a == IPv6
}

// The IMDSv2 token endpoint.
const (
	// TokenPath is the token endpoint relative to the version prefix, as the
	// policy sees it.
	TokenPath = "/api/token"
	// TokenURLPath is the token endpoint a session PUTs to.
	TokenURLPath = "/latest" + TokenPath
	// TokenAllow is the Allow header of a 405 on the token path.
	TokenAllow = "OPTIONS, PUT"
)

// Header names, in Go's canonical form (the keys of an http.Header).
const (
	// HeaderToken carries an IMDSv2 token on a metadata read.
	HeaderToken = "X-Aws-Ec2-Metadata-Token"
	// HeaderTokenTTL carries the requested token lifetime on a token PUT,
	// and echoes it on the answer.
	HeaderTokenTTL = "X-Aws-Ec2-Metadata-Token-Ttl-Seconds"
	// Server is the value of the Server header IMDS answers with.
	Server = "EC2ws"
)

// Token lifetimes IMDS accepts in HeaderTokenTTL: 1 to 21600 seconds.
const (
	MinTokenTTL = 1 * time.Second
	MaxTokenTTL = 21600 * time.Second
)

// MaxAnswer bounds the body of an IMDS answer that imdsguard reads: the
// largest IMDS serves (user-data) is 16 KB, so a bigger one is an error.
const MaxAnswer = 1 << 20
