package redirect

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// readsOnly reports the calls of f that are not a Save: what a restart
// did beyond reading iptables-save.
func readsOnly(f *fakeIPT) []string {
	var other []string
	for _, c := range f.callsSnapshot() {
		if !strings.HasPrefix(c, "Stamp") && !strings.HasPrefix(c, "List") && !strings.HasPrefix(c, "TableExists") && !strings.HasPrefix(c, "Digest") {
			other = append(other, c)
		}
	}
	return other
}

// TestStateFileRestart: a daemon restarted over intact rules (same plan,
// same backend) reads its own chains and their hooks and nothing else; any difference from
// the verified lines, a new plan or a bad file takes the full check, which
// repairs; Remove drops the file.
func TestStateFileRestart(t *testing.T) {
	for _, mode := range []string{"nft", "legacy"} {
		t.Run(mode, func(t *testing.T) {
			state := filepath.Join(t.TempDir(), "rules.state")
			h := newFakeHost(t, mode, DefaultConfig())
			first := h.rulesWith(Options{Config: DefaultConfig(), Port: 8989, StateFile: state})
			must(t, first.Install(context.Background()))
			want := h.save()
			if _, err := os.Stat(state); err != nil {
				t.Fatalf("no state file after install: %v", err)
			}

			restart := func(port int) {
				t.Helper()
				h.resetCalls()
				must(t, h.rulesWith(Options{Config: DefaultConfig(), Port: port, StateFile: state}).Install(context.Background()))
			}
			restart(8989)
			for _, f := range []*fakeIPT{h.v4, h.v6} {
				if other := readsOnly(f); len(other) > 0 {
					t.Errorf("restart over intact rules did more than read them: %v", other)
				}
			}

			// An edited rule (same comment, another target): its line differs
			// from the verified reference: refilled.
			h.v4.deleteRuleContaining("filter", ChainIn, "DROP")
			h.v4.addForeign("filter", ChainIn, `-p tcp --dport 8989 -m comment --comment "imdsguard: nothing else reaches the proxy port" -j ACCEPT`)
			restart(8989)
			if got := h.save(); got != want {
				t.Errorf("restart over an edited rule did not repair it:\n%s\nwant:\n%s", got, want)
			}
			if !slices.Contains(h.v4.callsSnapshot(), "Apply filter/") {
				t.Errorf("restart over an edited rule did not refill its chain: %v", h.v4.callsSnapshot())
			}

			// A new plan (another port) over the old rules: rewritten.
			restart(9999)
			if !strings.Contains(h.v4.save(), "--dport 9999") || strings.Contains(h.v4.save(), "--dport 8989") {
				t.Errorf("restart with port 9999 kept the old rules:\n%s", h.v4.save())
			}
			restart(8989)

			// A file that is not ours: ignored with a word, full check.
			must(t, os.WriteFile(state, []byte("{not json"), 0o600))
			h.log.Reset()
			restart(8989)
			if !strings.Contains(h.log.String(), "ignoring the rules state file") {
				t.Errorf("a bad state file was not reported: %s", h.log.String())
			}
			if len(readsOnly(h.v4)) == 0 {
				t.Errorf("a bad state file was trusted")
			}
			if got := h.save(); got != want {
				t.Errorf("rules after a bad state file:\n%s\nwant:\n%s", got, want)
			}

			must(t, h.rulesWith(Options{Config: DefaultConfig(), Port: 8989, StateFile: state}).Remove(context.Background()))
			if _, err := os.Stat(state); !os.IsNotExist(err) {
				t.Errorf("state file left after remove: %v", err)
			}
		})
	}
}
