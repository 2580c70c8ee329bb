package redirect

import (
	"context"
	"time"
)

// Keep holds the rules in place until ctx ends. It starts with Install, so
// that it stands on its own; after the daemon's own Install (which runs
// first so that a start without the rules fails before any listener opens)
// that is a no-op: one read of each family's rules, nothing written. Then
// every r.every (250 ms) asks for each family's stamp (nf_tables'
// generation: one netlink request, no rule read); only when it changed does
// it read imdsguard's chains and their hooks (targeted, verify.go), and
// when they differ from what Install left (an outside `iptables -t nat -F`,
// a flushed chain, a deleted jump, a rule that could touch metadata traffic
// put before a jump, a firewalld reload) or a landing address is gone from
// lo, it restores what is missing, logs it once per episode and counts it
// (Restores).
// It also follows the container interfaces through netlink and logs those
// that appear or vanish. When ctx ends the rules stay (KeepOnExit: fail
// closed) or are removed.
//
// Every iptables command and netlink query runs on the calling goroutine,
// so a caller that pinned its thread to a network namespace keeps Keep there.
func (r *Rules) Keep(ctx context.Context) error {
	if err := r.Install(ctx); err != nil {
		if ctx.Err() != nil {
			return r.exit(ctx)
		}
		r.log.Error("install failed; retrying every check", "err", err)
	}
	var changed <-chan struct{}
	w := r.followLinks()
	if w != nil {
		changed = w.Changed()
		defer r.unfollow(w)
	}
	tick := time.NewTicker(r.every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return r.exit(ctx)
		case <-tick.C:
			r.check()
		case _, ok := <-changed:
			if !ok {
				r.log.Warn("stopped following container interfaces: netlink subscription ended")
				changed = nil
				continue
			}
			r.refreshLinks(w)
		}
	}
}

// check looks at each family: when its stamp (runner.go) shows no change
// since the rules were last verified and its landing address is on lo,
// that is all; otherwise one targeted read compares the rules with the
// reference, and the family is restored when they differ.
func (r *Rules) check() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, fr := range r.active {
		if r.fresh(fr) && r.landingThere(fr.fam) {
			continue
		}
		ok, rd, err := r.verify(fr)
		if err != nil {
			r.log.Warn("cannot read rules", "family", fr.fam.Name, "err", err)
			continue
		}
		if ok && r.landingThere(fr.fam) {
			continue
		}
		r.setInPlace(fr.fam, false)
		r.restore(fr, ok, rd)
	}
}

// landingThere reports whether family f's landing address is on lo (or
// not needed). When lo cannot be read it says yes: a restore could not do
// better, and the rules are checked again at the next tick.
func (r *Rules) landingThere(f family) bool {
	if !r.params.wantsLanding() {
		return true
	}
	have, err := r.lo.List()
	if err != nil {
		r.log.Warn("cannot list the addresses of lo", "family", f.Name, "err", err)
		return true
	}
	return !landingMissing(f, r.params, have)
}

// restore puts back what one family misses: the landing address, and,
// unless rulesOK, the rules, judged on rd (the reading check judged; read
// again only when there is none), then records the new reference. It
// counts a restore when something had to be put back.
func (r *Rules) restore(fr familyRunner, rulesOK bool, rd reading) {
	start := time.Now()
	st, _ := fr.ipt.Stamp() // who changed the rules, for the log
	fixed, err := ensureLanding(r.lo, fr.fam, r.params)
	if err == nil && !rulesOK {
		var f []string
		f, err = r.fixRules(fr, rd)
		fixed = append(fixed, f...)
	}
	if err != nil {
		r.log.Error("restoring rules failed; retrying at the next check", "family", fr.fam.Name, "fixed", fixed, "err", err)
		return
	}
	if len(fixed) > 0 {
		r.noteRestore(fr.fam, fixed, time.Since(start), st.by)
		r.dropDirectFlows(fr.fam)
	}
	if rulesOK {
		r.setInPlace(fr.fam, true)
		return
	}
	if err := r.snapshot(fr); err != nil {
		r.log.Warn("cannot read rules", "family", fr.fam.Name, "err", err)
	}
}

// HandedOver says that another daemon keeps the rules from now on (a
// handover): when Keep ends they stay, whatever keep_on_exit says.
func (r *Rules) HandedOver() { r.handed.Store(true) }

// exit leaves the rules in place (fail closed) or removes them.
func (r *Rules) exit(ctx context.Context) error {
	if r.handed.Load() {
		r.log.Info("leaving rules in place: the daemon that took over keeps them")
		return nil
	}
	if r.cfg.KeepOnExit {
		r.log.Info("leaving rules in place: metadata traffic is refused while the proxy is down (keep_on_exit)")
		return nil
	}
	r.log.Info("removing rules (keep_on_exit is false)")
	return r.Remove(context.WithoutCancel(ctx))
}

// followLinks opens the link watch and fills the cache; nil when following
// is impossible (logged).
func (r *Rules) followLinks() linkWatch {
	w, err := r.openLinks(true)
	if err != nil {
		r.log.Warn("cannot follow container interfaces", "err", err)
		return nil
	}
	r.refreshLinks(w)
	return w
}

// unfollow closes the watch and empties the cache.
func (r *Rules) unfollow(w linkWatch) {
	w.Close()
	r.links.set(nil, false)
}
