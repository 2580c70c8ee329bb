package redirect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// Install puts every rule of the configured families in place. It is
// idempotent: what is present and right is left alone, so running it twice
// is running it once. A table that did not exist is created with the
// ChainMadeTable marker (nf_tables), so that Remove can delete it again.
func (r *Rules) Install(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, fr := range r.active {
		if err := ctx.Err(); err != nil {
			return err
		}
		fixed, err := r.ensureFamily(fr)
		if err != nil {
			return err
		}
		if len(fixed) > 0 {
			r.log.Info("installed rules", "family", fr.fam.Name, "pieces", fixed)
			r.dropDirectFlows(fr.fam)
		}
		if err := r.snapshot(fr); err != nil {
			return err
		}
	}
	if err := r.saveState(); err != nil && !errors.Is(err, fs.ErrNotExist) { // no state directory (yet): no shortcut
		r.log.Warn("cannot write the rules state file; the next start checks every rule", "path", r.statePath, "err", err)
	}
	return nil
}

// snapshot records ourLines of fr as Keep's reference, but only when that
// read shows every piece in place: something deleted from outside between
// the install and this read must not become the reference (Keep would never
// restore it). Without a reference the next check restores. The reference
// is the verified picture of the rules: Keep compares with it, and
// ensureFamily takes lines equal to it as checked (state.go).
func (r *Rules) snapshot(fr familyRunner) error {
	save, err := fr.ipt.Save()
	if err != nil {
		delete(r.snap, fr.fam.Name)
		return fmt.Errorf("read %s rules: %w", fr.fam.Name, err)
	}
	if !inSave(save, plan(fr.fam, r.params)) {
		delete(r.snap, fr.fam.Name)
		return nil
	}
	r.snap[fr.fam.Name] = ourLines(save)
	return nil
}

// dropDirectFlows deletes the conntrack entries of metadata connections
// that go straight to IMDS: a connection opened before the rules were (back)
// in place would otherwise keep its path past the nat table, which only
// sees a connection's first packet (kiam #284). The filter backstops reset
// such packets anyway; this makes the kernel forget them too. Redirected
// connections keep their entries. A failure is logged, not fatal: the
// rules are in place.
func (r *Rules) dropDirectFlows(f family) {
	n, err := r.flushConntrack(f)
	switch {
	case err != nil:
		r.log.Warn("cannot drop conntrack entries of direct metadata flows", "family", f.Name, "err", err)
	case n > 0:
		r.log.Info("dropped conntrack entries of metadata flows opened before the rules", "family", f.Name, "entries", n)
	}
}

// ensureFamily installs what is missing in one family and returns what it
// had to fix, as "table/chain piece" strings (empty when all was in place).
// The landing address goes in first, so that no DNAT points nowhere.
func (r *Rules) ensureFamily(fr familyRunner) ([]string, error) {
	fixed, err := ensureLanding(r.lo, fr.fam, r.params)
	if err != nil {
		return nil, err
	}
	save, err := fr.ipt.Save()
	if err != nil {
		return fixed, fmt.Errorf("install %s: read rules: %w", fr.fam.Name, err)
	}
	if r.unchanged(fr, save) {
		return fixed, nil // byte-identical to what a full check verified
	}
	if fr.ipt.CanDropTables() {
		have := savedTables(save)
		for _, t := range tables() {
			if have[t] {
				continue
			}
			if err := fr.ipt.NewChain(t, ChainMadeTable); err != nil {
				return nil, fmt.Errorf("install %s %s/%s: %w", fr.fam.Name, t, ChainMadeTable, err)
			}
			fixed = append(fixed, t+" table")
		}
	}
	for _, c := range plan(fr.fam, r.params) {
		f, err := ensureChain(fr.ipt, c)
		if err != nil {
			return fixed, fmt.Errorf("install %s %s/%s: %w", fr.fam.Name, c.Table, c.Name, err)
		}
		fixed = append(fixed, f...)
	}
	return fixed, nil
}

// ensureChain makes c exist, hold exactly its rules in order, and be jumped
// to from its hook; it returns the pieces it had to fix.
func ensureChain(ipt runner, c chainPlan) ([]string, error) {
	var fixed []string
	where := c.Table + "/" + c.Name
	ok, err := ipt.ChainExists(c.Table, c.Name)
	if err != nil {
		return nil, err
	}
	if !ok {
		if err := ipt.NewChain(c.Table, c.Name); err != nil {
			return nil, err
		}
		fixed = append(fixed, where+" chain")
	}
	if ok, err = chainCurrent(ipt, c); err != nil {
		return fixed, err
	}
	if !ok {
		if err := fill(ipt, c); err != nil {
			return fixed, err
		}
		fixed = append(fixed, where+" rules")
	}
	f, err := ensureJumpFirst(ipt, c)
	return append(fixed, f...), err
}

// ensureJumpFirst makes c's jump the first rule of its hook: inserted there
// when missing, moved there (in one step) when something was put before it
// (kube-proxy, Calico or dockerd inserting their own jumps at the top).
func ensureJumpFirst(ipt runner, c chainPlan) ([]string, error) {
	pos, _, err := jumpPosition(ipt, c)
	switch {
	case err != nil:
		return nil, fmt.Errorf("check jump from %s: %w", c.Hook, err)
	case pos == 0:
		if err := ipt.Insert(c.Table, c.Hook, 1, c.Jump.Spec()...); err != nil {
			return nil, fmt.Errorf("jump from %s: %w", c.Hook, err)
		}
		return []string{c.Table + "/" + c.Hook + " jump"}, nil
	case pos > 1:
		if err := ipt.MoveFirst(c.Table, c.Hook, c.Jump.Spec()...); err != nil {
			return nil, fmt.Errorf("move the jump from %s to position 1: %w", c.Hook, err)
		}
		return []string{fmt.Sprintf("%s/%s jump moved to position 1 (was %d)", c.Table, c.Hook, pos)}, nil
	}
	return nil, nil
}

// jumpPosition returns the place (from 1) of c's jump among the rules of
// its hook, 0 when it is not there, and how many rules the hook holds.
func jumpPosition(ipt runner, c chainPlan) (pos, of int, err error) {
	listing, err := ipt.List(c.Table, c.Hook)
	if err != nil {
		return 0, 0, err
	}
	lines := ruleLines(listing)
	for i, l := range lines {
		if isJump(l, c) {
			return i + 1, len(lines), nil
		}
	}
	return 0, len(lines), nil
}

// isJump reports whether l, an "-A HOOK ..." line of iptables -S or
// iptables-save, is c's jump: its comment and its target.
func isJump(l string, c chainPlan) bool {
	return strings.HasPrefix(l, "-A "+c.Hook+" ") && strings.HasSuffix(l, " -j "+c.Name) &&
		strings.Contains(l, c.Jump.quotedComment())
}

// chainCurrent reports whether c holds exactly its rules, in order, and
// nothing else: the listing has one rule per planned rule, each carrying its
// own (unique) comment in place, and iptables -C finds every rule exactly.
func chainCurrent(ipt runner, c chainPlan) (bool, error) {
	listing, err := ipt.List(c.Table, c.Name)
	if err != nil {
		return false, err
	}
	got := ruleLines(listing)
	if len(got) != len(c.Rules) {
		return false, nil
	}
	for i, rl := range c.Rules {
		if !strings.Contains(got[i], rl.quotedComment()) {
			return false, nil
		}
		ok, err := ipt.Exists(c.Table, c.Name, rl.Spec()...)
		if err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

// fill flushes c (it is ours alone) and appends its rules in order.
func fill(ipt runner, c chainPlan) error {
	if err := ipt.ClearChain(c.Table, c.Name); err != nil {
		return err
	}
	for _, rl := range c.Rules {
		if err := ipt.Append(c.Table, c.Name, rl.Spec()...); err != nil {
			return fmt.Errorf("append %q: %w", rl.Comment, err)
		}
	}
	return nil
}
