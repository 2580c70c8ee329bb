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
// well placed: an unchanged digest, or one targeted read; nothing written.
// When they are, it records the stamp taken before, so that Keep looks
// again only after something changed. It also returns the reading it
// judged (nil when it had no reference, or the digest spared the read), so
// that a repair can work from it instead of reading again.
func (r *Rules) verify(fr familyRunner) (bool, reading, error) {
	ref, ok := r.snap[fr.fam.Name]
	if !ok {
		return false, nil, nil
	}
	st, stErr := fr.ipt.Stamp()
	plans := plan(fr.fam, r.params)
	dg := digestOf(fr.ipt, plans)
	if last := r.seen[fr.fam.Name]; dg != "" && dg == last.digest && last.allFirst {
		r.looked(fr.fam, st, stErr, dg, true) // not a rule of those chains changed
		return true, nil, nil
	}
	rd, err := read(fr.ipt, plans)
	if err != nil {
		return false, nil, fmt.Errorf("read %s rules: %w", fr.fam.Name, err)
	}
	placed, allFirst := r.placedAll(fr, rd, plans)
	if !slices.Equal(rd.lines(plans), ref) || !rd.complete(plans) || !placed {
		return false, rd, nil
	}
	r.looked(fr.fam, st, stErr, dg, allFirst)
	return true, rd, nil
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
// nothing was checked rule by rule, and no snapshot is needed). It reads
// once (verify.go), then writes each table's fixes in one iptables-restore
// --noflush transaction: on a node with 60,000 rules every write costs
// tens of milliseconds (on iptables-legacy, which replaces the whole table,
// hundreds), and a transaction never shows a half-made chain.
// The landing address goes in first, so that no DNAT points nowhere.
func (r *Rules) ensureFamily(fr familyRunner) (fixed []string, verified bool, err error) {
	fixed, err = ensureLanding(r.lo, fr.fam, r.params)
	if err != nil {
		return nil, false, err
	}
	ok, rd, err := r.verify(fr)
	if err == nil && ok {
		return fixed, true, nil // identical to what a full check verified
	}
	f, err := r.fixRules(fr, rd)
	return append(fixed, f...), false, err
}

// fixRules writes what one family's chains and jumps need, judged on rd
// (read now when nil), each table's fixes in one transaction.
func (r *Rules) fixRules(fr familyRunner, rd reading) (fixed []string, err error) {
	plans := plan(fr.fam, r.params)
	if rd == nil {
		if rd, err = read(fr.ipt, plans); err != nil {
			return nil, fmt.Errorf("install %s: read rules: %w", fr.fam.Name, err)
		}
	}
	ed := &edits{}
	if fixed, err = markTables(fr, ed, fixed); err != nil {
		return fixed, err
	}
	for _, c := range plans {
		f, err := planChain(fr.ipt, c, rd, fr.fam, r.params.Mark, &r.insists, refFor(r.snap[fr.fam.Name], c), ed)
		if err != nil {
			return fixed, fmt.Errorf("install %s %s/%s: %w", fr.fam.Name, c.Table, c.Name, err)
		}
		fixed = append(fixed, f...)
	}
	for _, t := range ed.order {
		if err := fr.ipt.Apply(t, ed.lines[t]); err != nil {
			return fixed, fmt.Errorf("install %s %s: %w", fr.fam.Name, t, err)
		}
	}
	return fixed, nil
}

// edits are iptables-restore lines, table by table, in the order given.
type edits struct {
	order []string
	lines map[string][]string
}

func (e *edits) add(table string, lines ...string) {
	if e.lines == nil {
		e.lines = map[string][]string{}
	}
	if _, ok := e.lines[table]; !ok {
		e.order = append(e.order, table)
	}
	e.lines[table] = append(e.lines[table], lines...)
}

// markTables adds the ChainMadeTable marker to each table that does not
// exist yet (nf_tables only), first in its transaction, so that Remove can
// delete the table again.
func markTables(fr familyRunner, ed *edits, fixed []string) ([]string, error) {
	if !fr.ipt.CanDropTables() {
		return fixed, nil
	}
	for _, t := range tables() {
		have, err := fr.ipt.TableExists(t)
		if err != nil {
			return fixed, fmt.Errorf("install %s: table %s: %w", fr.fam.Name, t, err)
		}
		if !have {
			ed.add(t, declare(ChainMadeTable))
			fixed = append(fixed, t+" table")
		}
	}
	return fixed, nil
}

// declare is the restore line that makes chain, or flushes it.
func declare(chain string) string { return ":" + chain + " - [0:0]" }

// planChain adds to ed what c needs, judged on the reading rd: the chain
// made and filled (declaring it in the transaction makes it or flushes
// it), the jump inserted at the top, or moved there (deleted and inserted
// in the same transaction, so never absent). It returns the pieces fixed.
func planChain(ipt runner, c chainPlan, rd reading, f family, mark uint32, ins *insisters, ref []string, ed *edits) ([]string, error) {
	var fixed []string
	where := c.Table + "/" + c.Name
	own, exists := rd[where]
	current := false
	if exists {
		var err error
		if current, err = chainCurrent(ipt, c, own, ref); err != nil {
			return nil, err
		}
	} else {
		fixed = append(fixed, where+" chain")
	}
	if !current {
		ed.add(c.Table, declare(c.Name))
		for _, rl := range c.Rules {
			ed.add(c.Table, "-A "+c.Name+" "+rl.String())
		}
		fixed = append(fixed, where+" rules")
	}
	p := place(ipt, rd[c.Table+"/"+c.Hook], c, f, mark)
	jump := c.Jump.String()
	switch {
	case p.pos == 0:
		ed.add(c.Table, "-I "+c.Hook+" 1 "+jump)
		return append(fixed, c.Table+"/"+c.Hook+" jump"), nil
	case p.first() || (p.ok && ins.has(f, c)):
		return fixed, nil
	}
	ed.add(c.Table, "-D "+c.Hook+" "+jump, "-I "+c.Hook+" 1 "+jump)
	if p.ok {
		ins.add(f, c)
		return append(fixed, fmt.Sprintf("%s/%s jump moved to position 1 (was %d, below rules that cannot touch metadata traffic: accepted if they come back)", c.Table, c.Hook, p.pos)), nil
	}
	return append(fixed, fmt.Sprintf("%s/%s jump moved to position 1 (was %d, below %s)", c.Table, c.Hook, p.pos, p.why)), nil
}

// isJump reports whether l, an "-A HOOK ..." line of iptables -S or
// iptables-save, is c's jump: its comment and its target.
func isJump(l string, c chainPlan) bool {
	return strings.HasPrefix(l, "-A "+c.Hook+" ") && strings.HasSuffix(l, " -j "+c.Name) &&
		strings.Contains(l, c.Jump.quotedComment())
}

// chainCurrent reports whether c holds exactly its rules, in order, and
// nothing else, got being its "-A" lines: one per planned rule, each
// carrying its own (unique) comment in place, and either equal to the
// verified reference's lines (ref) or, without one, each found exactly by
// iptables -C.
func chainCurrent(ipt runner, c chainPlan, got, ref []string) (bool, error) {
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
