package testbed

import "testing"

// TestNotLoopback keeps the pods' and the node's connections, not the
// control plane's own.
func TestNotLoopback(t *testing.T) {
	list := "tcp 6 src=127.0.0.1 dst=127.0.0.1 sport=1 dport=2379\n" +
		"tcp 6 src=198.19.0.2 dst=169.254.169.254 sport=2 dport=80\n" +
		"tcp 6 src=192.0.2.1 dst=192.0.2.1 sport=3 dport=6443\n"
	got := notLoopback(list, 1)
	if got != "tcp 6 src=198.19.0.2 dst=169.254.169.254 sport=2 dport=80\n[...]\n" {
		t.Errorf("notLoopback: %q", got)
	}
}
