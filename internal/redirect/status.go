package redirect

import (
	"context"
	"fmt"
	"strings"
)

// Status is what is installed and what is missing.
type Status struct {
	Backend string
	Items   []Item // one per expected piece, in install order
	Links   []Link // container interfaces present now
}

// Item is one expected piece of the rule set.
type Item struct {
	Family string // "ipv4" or "ipv6"
	Table  string // "" for the landing address
	Chain  string // the chain the piece lives in; "lo" for the landing address
	What   string // "chain", "rule 1: ...", "no foreign rules", the jump rule, "address ..."
	// Present: the piece is there and in its place; a jump only when it is
	// the first rule of its hook.
	Present bool
	// Jump marks the jump from a built-in chain (the hook, in Chain);
	// Position is its place there (from 1; 0 when absent) among Of rules.
	Jump         bool
	Position, Of int
}

// state is the item's status word.
func (it Item) state() string {
	switch {
	case it.Present:
		return "ok"
	case it.Jump && it.Position > 1:
		return "NOTFIRST"
	}
	return "MISSING"
}

// Where is "table/chain", or the chain alone (lo) for an address.
func (it Item) Where() string {
	if it.Table == "" {
		return it.Chain
	}
	return it.Table + "/" + it.Chain
}

// OK reports whether every expected piece is present.
func (s Status) OK() bool { return len(s.Missing()) == 0 }

// Missing returns the pieces that are not in place.
func (s Status) Missing() []Item {
	var out []Item
	for _, it := range s.Items {
		if !it.Present {
			out = append(out, it)
		}
	}
	return out
}

// String renders the status as human lines: a summary, then one line per
// piece (a jump with its position: NOTFIRST when something was put before
// it), then the container interfaces.
func (s Status) String() string {
	var b strings.Builder
	verdict := "all rules in place"
	switch n := len(s.Missing()); {
	case len(s.Items) == 0:
		verdict = "none configured (redirect.ipv4 and redirect.ipv6 are false)"
	case n > 0:
		verdict = fmt.Sprintf("%d of %d pieces missing or out of place", n, len(s.Items))
	}
	fmt.Fprintf(&b, "imdsguard rules (iptables %s): %s\n", s.Backend, verdict)
	for _, it := range s.Items {
		what := it.What
		if it.Jump && it.Position > 0 {
			what += fmt.Sprintf(" (position %d of %d)", it.Position, it.Of)
		}
		fmt.Fprintf(&b, "  %-8s %s %-22s %s\n", it.state(), it.Family, it.Where(), what)
	}
	if len(s.Links) == 0 {
		b.WriteString("container interfaces: none present\n")
	}
	for _, l := range s.Links {
		fmt.Fprintf(&b, "container interface %s\n", l)
	}
	return b.String()
}

// Status inspects the configured families without changing anything (a
// table that does not exist is not touched, so not created either).
func (r *Rules) Status(ctx context.Context) (Status, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := Status{Backend: r.backend}
	for _, fr := range r.active {
		if err := ctx.Err(); err != nil {
			return st, err
		}
		items, err := inspectFamily(fr, r.params, r.snap[fr.fam.Name])
		st.Items = append(st.Items, items...)
		if err != nil {
			return st, err
		}
		if r.params.wantsLanding() {
			it, err := landingItem(r.lo, fr.fam, r.params)
			st.Items = append(st.Items, it)
			if err != nil {
				return st, err
			}
		}
	}
	st.Links = r.Interfaces()
	return st, nil
}

// inspectFamily lists every expected piece of one family with its
// presence, from one reading of its chains and hooks (verify.go; tables
// that do not exist are not read, so not created either).
func inspectFamily(fr familyRunner, p params, ref []string) ([]Item, error) {
	plans := plan(fr.fam, p)
	have := map[string]bool{}
	var present []chainPlan
	for _, c := range plans {
		if _, asked := have[c.Table]; !asked {
			ok, err := fr.ipt.TableExists(c.Table)
			if err != nil {
				return nil, fmt.Errorf("status %s: table %s: %w", fr.fam.Name, c.Table, err)
			}
			have[c.Table] = ok
		}
		if have[c.Table] {
			present = append(present, c)
		}
	}
	rd, err := read(fr.ipt, present)
	if err != nil {
		return nil, fmt.Errorf("status %s: %w", fr.fam.Name, err)
	}
	var items []Item
	for _, c := range plans {
		its, err := inspectChain(fr.ipt, c, rd, fr.fam, p.Mark, refFor(ref, c))
		for i := range its {
			its[i].Family = fr.fam.Name
		}
		items = append(items, its...)
		if err != nil {
			return items, fmt.Errorf("status %s %s/%s: %w", fr.fam.Name, c.Table, c.Name, err)
		}
	}
	return items, nil
}

// inspectChain checks one chain in rd: it exists, holds each rule in its
// place and nothing else (each line equal to the verified reference's, or
// without one found exactly by iptables -C), and is jumped to from its
// hook by a well placed jump (first, or below rules that cannot touch
// metadata traffic: above.go).
func inspectChain(ipt runner, c chainPlan, rd reading, f family, mark uint32, ref []string) ([]Item, error) {
	item := func(what string) Item { return Item{Table: c.Table, Chain: c.Name, What: what} }
	chainIt := item("chain")
	jumpIt := Item{Table: c.Table, Chain: c.Hook, What: c.Jump.String(), Jump: true}
	var ruleIts []Item
	for i, rl := range c.Rules {
		ruleIts = append(ruleIts, item(fmt.Sprintf("rule %d: %s", i+1, rl)))
	}
	onlyIt := item("no foreign rules")
	collect := func() []Item {
		out := append([]Item{chainIt}, ruleIts...)
		return append(out, onlyIt, jumpIt)
	}
	got, ok := rd[c.Table+"/"+c.Name]
	if !ok {
		return collect(), nil // no chain, no jump to it (see removeChain)
	}
	chainIt.Present = true
	pl := place(ipt, rd[c.Table+"/"+c.Hook], c, f, mark)
	jumpIt.Position, jumpIt.Of, jumpIt.Present = pl.pos, pl.of, pl.ok
	onlyIt.Present = len(got) == len(c.Rules)
	for i, rl := range c.Rules {
		inPlace := i < len(got) && strings.Contains(got[i], rl.quotedComment())
		var exact bool
		switch {
		case !inPlace:
		case ref != nil:
			exact = i < len(ref) && got[i] == ref[i]
		default:
			var err error
			if exact, err = ipt.Exists(c.Table, c.Name, rl.Spec()...); err != nil {
				return collect(), err
			}
		}
		ruleIts[i].Present = inPlace && exact
	}
	return collect(), nil
}
