package fakeimds

import (
	"fmt"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// Endpoint states of Options.Endpoint: how the fake plays the instance's
// http-endpoint setting.
const (
	// EndpointEnabled serves metadata (the default).
	EndpointEnabled = "enabled"
	// EndpointDisabled answers every request 403, as IMDS does for an
	// instance set to --http-endpoint disabled (AWS's troubleshooting
	// guide: "403 - Forbidden ... if the request isn't allowed or IMDS is
	// turned off").
	EndpointDisabled = "disabled"
	// EndpointSilent accepts connections and never answers: the other
	// way a disabled endpoint could look from the instance (undocumented;
	// a client can only time out).
	EndpointSilent = "silent"
)

// silentHold bounds how long a silent endpoint holds a request.
const silentHold = 30 * time.Second

// Options play the instance's metadata options
// (modify-instance-metadata-options). The zero value is an instance with
// the endpoint enabled, tags off and the system's default TTL.
type Options struct {
	Endpoint string // "" or EndpointEnabled, EndpointDisabled, EndpointSilent
	// Tags serves the instance's tags under /latest/meta-data/tags/instance
	// (--instance-metadata-tags enabled); without it those paths answer 404,
	// as IMDS does with tags off.
	Tags bool
	// HopLimit is the IP TTL (IPv4) or hop limit (IPv6) of token PUT
	// answers, as IMDS sends them for --http-put-response-hop-limit; 0
	// leaves the system default (64).
	HopLimit int
}

// Validate rejects an unknown endpoint state or a hop limit outside 1..64
// (IMDS's range).
func (o Options) Validate() error {
	switch o.Endpoint {
	case "", EndpointEnabled, EndpointDisabled, EndpointSilent:
	default:
		return fmt.Errorf("fakeimds options: endpoint %q: want %s, %s or %s", o.Endpoint, EndpointEnabled, EndpointDisabled, EndpointSilent)
	}
	if o.HopLimit < 0 || o.HopLimit > 64 {
		return fmt.Errorf("fakeimds options: hop limit %d: want 1..64 (0: the system default)", o.HopLimit)
	}
	return nil
}

// Tags served with Options.Tags.
var Tags = map[string]string{"Name": "fakeimds", "Environment": "test"}

// tagsTree is the tags part of the metadata tree.
func tagsTree() map[string]string {
	t := map[string]string{"/meta-data/tags/": "instance"}
	list := ""
	for _, k := range []string{"Environment", "Name"} {
		list += k + "\n"
		t["/meta-data/tags/instance/"+k] = Tags[k]
	}
	t["/meta-data/tags/instance/"] = list[:len(list)-1]
	return t
}

// refuse plays a disabled endpoint; it reports whether it answered.
func (o Options) refuse(w http.ResponseWriter, r *http.Request) bool {
	switch o.Endpoint {
	case EndpointDisabled:
		writeError(w, http.StatusForbidden)
		return true
	case EndpointSilent:
		select {
		case <-r.Context().Done():
		case <-time.After(silentHold):
		}
		return true
	}
	return false
}

// writeTokenTTL answers a token PUT on a connection whose IP TTL is
// hop, as IMDS answers with a hop limit: the connection is hijacked,
// its TTL set, the answer written and the connection closed.
func writeTokenTTL(w http.ResponseWriter, hop, ttl int, tok string) error {
	conn, buf, err := http.NewResponseController(w).Hijack()
	if err != nil {
		return fmt.Errorf("token answer with hop limit %d: hijack: %w", hop, err)
	}
	defer conn.Close()
	if err := setTTL(conn, hop); err != nil {
		return err
	}
	_, err = fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nServer: EC2ws\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n"+
		"X-aws-ec2-metadata-token-ttl-seconds: %s\r\nConnection: close\r\n\r\n%s", len(tok), strconv.Itoa(ttl), tok)
	if err == nil {
		err = buf.Flush()
	}
	if err != nil {
		return fmt.Errorf("token answer with hop limit %d: %w", hop, err)
	}
	return nil
}

// setTTL sets the IP TTL or IPv6 unicast hop limit of conn's packets.
func setTTL(conn net.Conn, hop int) error {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return fmt.Errorf("set ttl %d: %T has no socket", hop, conn)
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return fmt.Errorf("set ttl %d: %w", hop, err)
	}
	level, opt := syscall.IPPROTO_IP, syscall.IP_TTL
	if a, ok := conn.LocalAddr().(*net.TCPAddr); ok && a.IP.To4() == nil {
		level, opt = syscall.IPPROTO_IPV6, syscall.IPV6_UNICAST_HOPS
	}
	var serr error
	if err := raw.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), level, opt, hop) }); err != nil {
		return fmt.Errorf("set ttl %d: %w", hop, err)
	}
	if serr != nil {
		return fmt.Errorf("set ttl %d: %w", hop, serr)
	}
	return nil
}
