package redirect

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
)

// The verified reference, kept across restarts.
//
// Install checks every rule exactly (iptables -C, one process per rule:
// some 80 commands for both families), which under load takes more than a
// second, and a restarted daemon serves only after Install. Once a full
// check has passed, ourLines of the rule set (every imdsguard line of
// iptables-save, jumps with their positions) is a verified picture of the
// rules, and Keep already trusts it between its checks: the same lines
// mean the same rules. The state file carries that picture over a restart,
// with a fingerprint of the plan it was verified against, so that a
// restart finding byte-identical lines under the same plan and backend
// reads iptables-save once per family and writes nothing. Any other
// difference (a changed rule, a new plan after a configuration change,
// another backend, no file) takes the full check. The file is only a
// shortcut: it never makes Install accept lines that differ from ones a
// full check verified.

// stateVersion changes when the meaning of the file does.
const stateVersion = 2 // 2: the lines of a targeted reading (verify.go), not of iptables-save

type stateFile struct {
	Version  int                    `json:"version"`
	Backend  string                 `json:"backend"`
	Families map[string]familyState `json:"families"`
}

type familyState struct {
	Plan  string   `json:"plan"`  // planFingerprint of the plan verified
	Lines []string `json:"lines"` // reading.lines after that check
}

// planFingerprint identifies family f's plan: every chain, hook, rule and
// jump as iptables arguments.
func planFingerprint(f family, p params) string {
	h := sha256.New()
	for _, c := range plan(f, p) {
		fmt.Fprintf(h, "%s %s %s %q\n", c.Table, c.Name, c.Hook, c.Jump.Spec())
		for _, rl := range c.Rules {
			fmt.Fprintf(h, "  %q\n", rl.Spec())
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// loadState reads the state file into r.snap for the active families whose
// backend and plan it matches. A missing or unreadable file is no
// reference (logged when it exists but cannot be used).
func (r *Rules) loadState() {
	if r.statePath == "" {
		return
	}
	data, err := os.ReadFile(r.statePath)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	var st stateFile
	if err == nil {
		err = json.Unmarshal(data, &st)
	}
	if err != nil {
		r.log.Warn("ignoring the rules state file; the first install checks every rule", "path", r.statePath, "err", err)
		return
	}
	if st.Version != stateVersion || st.Backend != r.backend {
		return
	}
	for _, fr := range r.active {
		fs, ok := st.Families[fr.fam.Name]
		if ok && fs.Plan == planFingerprint(fr.fam, r.params) && len(fs.Lines) > 0 {
			r.snap[fr.fam.Name] = fs.Lines
		}
	}
}

// saveState writes r.snap (the verified references) to the state file,
// replacing it in one rename. Called with r.mu held.
func (r *Rules) saveState() error {
	if r.statePath == "" {
		return nil
	}
	st := stateFile{Version: stateVersion, Backend: r.backend, Families: map[string]familyState{}}
	for _, fr := range r.active {
		if lines, ok := r.snap[fr.fam.Name]; ok {
			st.Families[fr.fam.Name] = familyState{Plan: planFingerprint(fr.fam, r.params), Lines: lines}
		}
	}
	if len(st.Families) == 0 {
		return r.dropState()
	}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if old, err := os.ReadFile(r.statePath); err == nil && slices.Equal(old, data) {
		return nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(r.statePath), ".rules-state-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), r.statePath)
}

// dropState removes the state file (rules removed: nothing to refer to).
func (r *Rules) dropState() error {
	if r.statePath == "" {
		return nil
	}
	if err := os.Remove(r.statePath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
