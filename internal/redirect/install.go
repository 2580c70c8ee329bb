package redirect

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"slices"
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
		fixed, verified, err := r.ensureFamily(fr)
		if err != nil {
			return err
		}
		if len(fixed) > 0 {
			r.log.Info("installed rules", "family", fr.fam.Name, "pieces", fixed)
			r.dropDirectFlows(fr.fam)
		}
		if verified && len(fixed) == 0 {
			continue
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

// snapshot records fr's reading as Keep's reference, but only when it
// shows every piece in place: something deleted from outside between the
// install and this read must not become the reference (Keep would never
// restore it). Without a reference the next check restores. The reference
// is the verified picture of the rules: Keep compares with it, and
// ensureFamily takes a reading equal to it as checked (state.go).
func (r *Rules) snapshot(fr familyRunner) error {
	st, stErr := fr.ipt.Stamp()
	plans := plan(fr.fam, r.params)
	dg := digestOf(fr.ipt, plans)
	rd, err := read(fr.ipt, plans)
	if err != nil {
		r.forget(fr.fam)
		return fmt.Errorf("read %s rules: %w", fr.fam.Name, err)
	}
	placed, allFirst := r.placedAll(fr, rd, plans)
	if !rd.complete(plans) || !placed {
		r.forget(fr.fam)
		return nil
	}
	r.snap[fr.fam.Name] = rd.lines(plans)
	r.looked(fr.fam, st, stErr, dg, allFirst)
	return nil
}

// verify reports whether fr's rules are exactly the reference, every jump
// well placed: one targeted read, nothing written. When they are, it
// records the stamp taken before the read, so that Keep reads again only
// after something changed.
func (r *Rules) verify(fr familyRunner) (bool, error) {
	ref, ok := r.snap[fr.fam.Name]
	if !ok {
		return false, nil
	}
	st, stErr := fr.ipt.Stamp()
	plans := plan(fr.fam, r.params)
	dg := digestOf(fr.ipt, plans)
	if last := r.seen[fr.fam.Name]; dg != "" && dg == last.digest && last.allFirst {
		r.looked(fr.fam, st, stErr, dg, true) // not a rule of those chains changed
		return true, nil
	}
	rd, err := read(fr.ipt, plans)
	if err != nil {
		return false, fmt.Errorf("read %s rules: %w", fr.fam.Name, err)
	}
	placed, allFirst := r.placedAll(fr, rd, plans)
	if !slices.Equal(rd.lines(plans), ref) || !rd.complete(plans) || !placed {
		return false, nil
	}
	r.looked(fr.fam, st, stErr, dg, allFirst)
	return true, nil
}

// placedAll reports whether every jump of plans is well placed in rd:
// first, or below harmless rules where such rules came back after the jump
// was moved above them once (below.go); allFirst says every jump is first
// (then no other chain matters to the verdict). A jump accepted below
// someone else's rules is logged once per such arrangement.
func (r *Rules) placedAll(fr familyRunner, rd reading, plans []chainPlan) (ok, allFirst bool) {
	allFirst = true
	for _, c := range plans {
		p := place(fr.ipt, rd[c.Table+"/"+c.Hook], c, fr.fam, r.params.Mark)
		if !p.first() && !(p.ok && r.insists.has(fr.fam, c)) {
			return false, false
		}
		allFirst = allFirst && p.first()
		r.noteBelow(fr.fam, c, p)
	}
	return true, allFirst
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
// had to fix, as "table/chain piece" strings (empty when all was in place),
// and whether it found the rules equal to the verified reference (then
// nothing was checked rule by rule, and no snapshot is needed).
// The landing address goes in first, so that no DNAT points nowhere.
func (r *Rules) ensureFamily(fr familyRunner) (fixed []string, verified bool, err error) {
	fixed, err = ensureLanding(r.lo, fr.fam, r.params)
	if err != nil {
		return nil, false, err
	}
	if ok, err := r.verify(fr); err == nil && ok {
		return fixed, true, nil // identical to what a full check verified
	}
	if fr.ipt.CanDropTables() {
		for _, t := range tables() {
			have, err := fr.ipt.TableExists(t)
			if err != nil {
				return fixed, false, fmt.Errorf("install %s: table %s: %w", fr.fam.Name, t, err)
			}
			if have {
				continue
			}
			if err := fr.ipt.NewChain(t, ChainMadeTable); err != nil {
				return nil, false, fmt.Errorf("install %s %s/%s: %w", fr.fam.Name, t, ChainMadeTable, err)
			}
			fixed = append(fixed, t+" table")
		}
	}
	for _, c := range plan(fr.fam, r.params) {
		f, err := ensureChain(fr.ipt, c, fr.fam, r.params.Mark, &r.insists, r.snap[fr.fam.Name])
		if err != nil {
			return fixed, false, fmt.Errorf("install %s %s/%s: %w", fr.fam.Name, c.Table, c.Name, err)
		}
		fixed = append(fixed, f...)
	}
	return fixed, false, nil
}

// ensureChain makes c exist, hold exactly its rules in order, and be jumped
// to from its hook; it returns the pieces it had to fix.
func ensureChain(ipt runner, c chainPlan, f family, mark uint32, ins *insisters, ref []string) ([]string, error) {
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
	if ok, err = chainCurrent(ipt, c, refFor(ref, c)); err != nil {
		return fixed, err
	}
	if !ok {
		if err := fill(ipt, c); err != nil {
			return fixed, err
		}
		fixed = append(fixed, where+" rules")
	}
	fx, err := ensureJumpPlaced(ipt, c, f, mark, ins)
	return append(fixed, fx...), err
}

// ensureJumpPlaced makes c's jump the first rule of its hook: inserted at
// the top when missing, moved there in one step when something was put
// before it. Harmless rules above it (above.go) are accepted only when they
// came back after the jump was moved above them once: an agent that
// insists on rule 1 (below.go).
func ensureJumpPlaced(ipt runner, c chainPlan, f family, mark uint32, ins *insisters) ([]string, error) {
	listing, err := ipt.List(c.Table, c.Hook)
	if err != nil {
		return nil, fmt.Errorf("check jump from %s: %w", c.Hook, err)
	}
	p := place(ipt, ruleLines(listing), c, f, mark)
	switch {
	case p.pos == 0:
		if err := ipt.Insert(c.Table, c.Hook, 1, c.Jump.Spec()...); err != nil {
			return nil, fmt.Errorf("jump from %s: %w", c.Hook, err)
		}
		return []string{c.Table + "/" + c.Hook + " jump"}, nil
	case p.first() || (p.ok && ins.has(f, c)):
		return nil, nil
	}
	if err := ipt.MoveFirst(c.Table, c.Hook, c.Jump.Spec()...); err != nil {
		return nil, fmt.Errorf("move the jump from %s to position 1: %w", c.Hook, err)
	}
	if p.ok {
		ins.add(f, c)
		return []string{fmt.Sprintf("%s/%s jump moved to position 1 (was %d, below rules that cannot touch metadata traffic: accepted if they come back)", c.Table, c.Hook, p.pos)}, nil
	}
	return []string{fmt.Sprintf("%s/%s jump moved to position 1 (was %d, below %s)", c.Table, c.Hook, p.pos, p.why)}, nil
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
func chainCurrent(ipt runner, c chainPlan, ref []string) (bool, error) {
	listing, err := ipt.List(c.Table, c.Name)
	if err != nil {
		return false, err
	}
	got := ruleLines(listing)
	if len(got) != len(c.Rules) {
		return false, nil
	}
	if ref != nil {
		// The lines a full check verified: equal lines are equal rules,
		// no -C needed (on iptables-legacy each -C reads the whole table).
		return slices.Equal(got, ref), nil
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

// refFor picks c's own rule lines out of a family's reference (the
// reading.lines a full check verified); nil without a reference, or when
// it shows c absent.
func refFor(ref []string, c chainPlan) []string {
	if ref == nil {
		return nil
	}
	prefix := c.Table + "/" + c.Name + " "
	out := []string{}
	for _, l := range ref {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			if rest == "absent" {
				return nil
			}
			out = append(out, rest)
		}
	}
	return out
}

// fill replaces c's rules (it is ours alone) with its planned ones, in
// one step.
func fill(ipt runner, c chainPlan) error {
	specs := make([][]string, len(c.Rules))
	for i, rl := range c.Rules {
		specs[i] = rl.Spec()
	}
	if err := ipt.FillChain(c.Table, c.Name, specs); err != nil {
		return fmt.Errorf("fill: %w", err)
	}
	return nil
}
