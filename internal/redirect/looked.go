package redirect

import (
	"fmt"
	"time"
)

// What Keep remembers of its last looks, so that it reads the rules only
// after something changed, and says what it accepted or restored once.

// seenStamp is the stamp taken before the last reading that verified a
// family's rules, and when.
type seenStamp struct {
	value string
	at    time.Time
	// digest of imdsguard's chains and their hooks (nf_tables only; ""
	// otherwise) at that reading, and whether every jump was first: then
	// an equal digest proves them unchanged without reading them.
	digest   string
	allFirst bool
}

// looked records that family f's rules were verified in a reading taken
// after stamp st; without a stamp (err) nothing is recorded, and Keep
// reads at every tick.
func (r *Rules) looked(f family, st stamp, err error, digest string, allFirst bool) {
	r.setInPlace(f, true)
	if err != nil {
		delete(r.seen, f.Name)
		return
	}
	r.seen[f.Name] = seenStamp{value: st.value, at: time.Now(), digest: digest, allFirst: allFirst}
}

// forget drops family f's reference: the next check restores.
func (r *Rules) forget(f family) {
	delete(r.snap, f.Name)
	delete(r.seen, f.Name)
}

// fresh reports whether nothing can have changed in family fr's rules
// since they were last verified: the stamp is the same, and (when the
// stamp is not exact) the last reading is younger than the backstop.
func (r *Rules) fresh(fr familyRunner) bool {
	seen, ok := r.seen[fr.fam.Name]
	if !ok {
		return false
	}
	st, err := fr.ipt.Stamp()
	if err != nil {
		r.log.Debug("cannot stamp the rule set; reading it", "family", fr.fam.Name, "err", err)
		return false
	}
	return st.value == seen.value && (st.exact || time.Since(seen.at) < r.backstop)
}

// setInPlace records whether family f's rules were last found in place.
func (r *Rules) setInPlace(f family, ok bool) {
	if b := r.inPlace[f.Name]; b != nil {
		b.Store(ok)
	}
}

// InPlace reports, per configured family ("ipv4", "ipv6"), whether Keep's
// last look found every rule, jump and landing address in place.
func (r *Rules) InPlace() map[string]bool {
	out := make(map[string]bool, len(r.inPlace))
	for name, b := range r.inPlace {
		out[name] = b.Load()
	}
	return out
}

// insisters remembers, per family and hook, rules that came back above a
// jump after it was moved above them: an agent that insists on rule 1
// (Felix). Below those, when they are harmless, the jump stays.
type insisters map[string]bool

func insistKey(f family, c chainPlan) string { return f.Name + " " + c.Table + "/" + c.Hook }

// has reports whether the jump of c was moved above harmless rules before.
func (in *insisters) has(f family, c chainPlan) bool { return (*in)[insistKey(f, c)] }

// add records that the jump of c was moved above harmless rules.
func (in *insisters) add(f family, c chainPlan) {
	if *in == nil {
		*in = insisters{}
	}
	(*in)[insistKey(f, c)] = true
}

// noteBelow logs, once per arrangement, that c's jump was left below
// someone else's rules because none of them can touch metadata traffic.
func (r *Rules) noteBelow(f family, c chainPlan, p placement) {
	key := fmt.Sprintf("%s %s/%s", f.Name, c.Table, c.Hook)
	if p.pos <= 1 {
		delete(r.below, key)
		return
	}
	if r.below[key] == p.above {
		return
	}
	r.below[key] = p.above
	r.log.Info("leaving the jump below rules that cannot touch metadata traffic",
		"family", f.Name, "chain", c.Table+"/"+c.Hook, "position", p.pos, "of", p.of, "above", p.above)
}

// episode is the restores of one kind in one family, close together: an
// agent that keeps undoing the same rules (a competitor for rule 1) makes
// one episode, logged once at warning level, its repeats at debug level,
// with a summary every episodeSummary while it lasts.
type episode struct {
	what        string
	first, last time.Time
	count       int
	summarized  time.Time
}

const (
	episodeGap     = 5 * time.Minute  // quieter than this: the next restore starts a new episode
	episodeSummary = 10 * time.Minute // a long episode is summarized this often
)

// noteRestore logs a restore of fixed in family f at the level its
// episode calls for.
func (r *Rules) noteRestore(f family, fixed []string, took time.Duration, by string) {
	now := time.Now()
	what := fmt.Sprint(fixed)
	n := r.restores.Add(1)
	e := r.episodes[f.Name]
	if e == nil || e.what != what || now.Sub(e.last) > episodeGap {
		r.episodes[f.Name] = &episode{what: what, first: now, last: now, count: 1, summarized: now}
		r.log.Warn("restored rules deleted from outside", "family", f.Name, "fixed", fixed,
			"took", took.String(), "changed_by", by, "restores", n)
		return
	}
	e.count++
	e.last = now
	if now.Sub(e.summarized) >= episodeSummary {
		e.summarized = now
		r.log.Warn("still restoring the same rules: something keeps changing them", "family", f.Name, "fixed", fixed,
			"times", e.count, "since", e.first.Format(time.RFC3339), "changed_by", by, "restores", n)
		return
	}
	r.log.Debug("restored the same rules again", "family", f.Name, "fixed", fixed, "times", e.count, "changed_by", by, "restores", n)
}
