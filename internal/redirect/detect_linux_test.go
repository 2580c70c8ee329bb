package redirect

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
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
	pick, err := detectBackend(slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "iptables-legacy-save") {
		t.Fatalf("detectBackend = %q, %v; want an error naming the failing tool", pick, err)
	}
}
