package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestThousands(t *testing.T) {
	for n, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 60007: "60,007", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := thousands(n); got != want {
			t.Errorf("thousands(%d) = %q, want %q", n, got, want)
		}
	}
}

func TestPerSecond(t *testing.T) {
	// 150 ticks (1.5 s of CPU) over 3 s of wall time: 500 ms per second.
	if got := perSecond(150, 3*time.Second); got != 500*time.Millisecond {
		t.Errorf("perSecond = %v, want 500ms", got)
	}
}

// A run's notes are shown under its own backend's tables only, and a
// failed command is marked in its cell.
func TestRenderNotesPerBackend(t *testing.T) {
	rep := report{Opts: options{Backends: backends}, Results: []result{
		{Backend: "nft", Extra: 60000, Check: timing{Median: 3 * time.Second, Failed: "x"}, Notes: []string{"nft note"}},
		{Backend: "legacy", Extra: 0},
	}}
	var b strings.Builder
	render(&b, rep)
	out := b.String()
	nft, legacy, _ := strings.Cut(out[strings.Index(out, "## iptables-nft"):], "## iptables-legacy")
	if !strings.Contains(nft, "nft note") || strings.Contains(legacy, "nft note") {
		t.Errorf("notes misplaced:\n%s", out)
	}
	if !strings.Contains(nft, "| 60,000 |") || !strings.Contains(nft, "3,000 ms (failed)") {
		t.Errorf("nft table:\n%s", nft)
	}
	if strings.Contains(out, "## Builds") || strings.Contains(out, "Envelope") {
		t.Errorf("a single build's report has the A/B sections:\n%s", out)
	}
}

// The daemon is known by its executable file, whatever its name.
func TestRunsBinary(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if err := runsBinary(os.Getpid(), self); err != nil {
		t.Errorf("this test's own binary: %v", err)
	}
	other := filepath.Join(t.TempDir(), "imdsguard")
	if err := os.WriteFile(other, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := runsBinary(os.Getpid(), other); err == nil {
		t.Errorf("runsBinary(self, %s) = nil, want an error", other)
	}
}
