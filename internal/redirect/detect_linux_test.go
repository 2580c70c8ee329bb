package redirect

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/internal/netnstest"
)

// A save tool that is installed but fails (say, without CAP_NET_RAW on a
// legacy host) must stop detection: counting it as an absent backend would
// put imdsguard's rules into a second backend beside the first one's.
func TestDetectRefusesAFailingSaveTool(t *testing.T) {
	dir := t.TempDir()
	script := map[string]string{
		"iptables-nft-save":     "echo '*filter'; echo COMMIT",
		"ip6tables-nft-save":    "echo '*filter'; echo COMMIT",
		"iptables-legacy-save":  "echo 'iptables-legacy-save: Permission denied (you must be root)' >&2; exit 1",
		"ip6tables-legacy-save": "echo '*filter'; echo COMMIT",
	}
	for name, body := range script {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	detect := func() (pick string, err error) {
		pick, err = detectBackend(slog.New(slog.DiscardHandler))
		return pick, err
	}
	if os.Geteuid() == 0 {
		// As root the legacy tables' headers answer first: give the
		// legacy backend a rule, in a namespace of the test's own, so
		// that detection has to count with the save tools.
		ns := netnstest.New(t, "rg-detect")
		netnstest.Run(t, "ip", "netns", "exec", ns, "/usr/sbin/iptables-legacy", "-A", "INPUT", "-j", "ACCEPT")
		detect = func() (pick string, err error) {
			err = netnstest.Do(ns, func() error {
				var e error
				pick, e = detectBackend(slog.New(slog.DiscardHandler))
				return e
			})
			return pick, err
		}
	}
	pick, err := detect()
	if err == nil || !strings.Contains(err.Error(), "iptables-legacy-save") {
		t.Fatalf("detectBackend = %q, %v; want an error naming the failing tool", pick, err)
	}
}

// With no legacy rule in the namespace, detection reads only the legacy
// tables' headers and runs no save tool (here they would all fail).
func TestDetectEmptyLegacyRunsNoSaveTool(t *testing.T) {
	netnstest.RequireRoot(t)
	dir := t.TempDir()
	for _, name := range []string{"iptables-nft-save", "ip6tables-nft-save", "iptables-legacy-save", "ip6tables-legacy-save"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\necho ran >&2; exit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", dir+":"+os.Getenv("PATH"))
	ns := netnstest.New(t, "rg-detect")
	var pick string
	err := netnstest.Do(ns, func() error {
		var e error
		pick, e = detectBackend(slog.New(slog.DiscardHandler))
		return e
	})
	if err != nil || pick != "nft" {
		t.Fatalf("detectBackend = %q, %v; want nft from the headers alone", pick, err)
	}
}
