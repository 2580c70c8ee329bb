package redirect

import (
	"context"
	"fmt"
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
		}
		if err := r.snapshot(fr); err != nil {
			return err
		}
	}
	return nil
}

// snapshot records ourLines of fr as Keep's reference, but only when that
// read shows every piece in place: something deleted from outside between
// the install and this read must not become the reference (Keep would never
// restore it). Without a reference the next check restores.
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

// ensureFamily installs what is missing in one family and returns what it
// had to fix, as "table/chain piece" strings (empty when all was in place).
func (r *Rules) ensureFamily(fr familyRunner) ([]string, error) {
	save, err := fr.ipt.Save()
	if err != nil {
		return nil, fmt.Errorf("install %s: read rules: %w", fr.fam.Name, err)
	}
	var fixed []string
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
	if ok, err = ipt.Exists(c.Table, c.Hook, c.Jump.Spec()...); err != nil {
		return fixed, fmt.Errorf("check jump from %s: %w", c.Hook, err)
	}
	if !ok {
		if err := ipt.Insert(c.Table, c.Hook, 1, c.Jump.Spec()...); err != nil {
			return fixed, fmt.Errorf("jump from %s: %w", c.Hook, err)
		}
		fixed = append(fixed, c.Table+"/"+c.Hook+" jump")
	}
	return fixed, nil
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
