package redirect

import (
	"context"
	"fmt"
)

// maxJumps bounds the loop that deletes duplicate jumps.
const maxJumps = 64

// Remove deletes exactly what Install made, in every family the host has
// (not only the configured ones: a family switched off since the install is
// cleaned too): the chains and jumps, then the landing addresses on lo
// (those Install marked, whatever address the configuration names now).
// Deleting something absent is success. Tables Install created
// are deleted when nothing else was put in them since (nf_tables only: a
// legacy table, once there, stays until its namespace goes).
func (r *Rules) Remove(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, fr := range r.all {
		if err := ctx.Err(); err != nil {
			return err
		}
		removed, err := removeFamily(fr)
		if err == nil {
			var rm []string
			rm, err = removeLanding(r.lo, fr.fam)
			removed = append(removed, rm...)
		}
		if len(removed) > 0 {
			r.log.Info("removed rules", "family", fr.fam.Name, "pieces", removed)
		}
		if err != nil {
			return err
		}
		delete(r.snap, fr.fam.Name)
	}
	if err := r.dropState(); err != nil {
		r.log.Warn("cannot remove the rules state file", "path", r.statePath, "err", err)
	}
	return nil
}

// removeFamily removes one family's chains, jumps and marked tables.
func removeFamily(fr familyRunner) ([]string, error) {
	save, err := fr.ipt.Save()
	if err != nil {
		return nil, fmt.Errorf("remove %s: read rules: %w", fr.fam.Name, err)
	}
	have := savedTables(save)
	var removed []string
	ps := plan(fr.fam, params{})
	for i := len(ps) - 1; i >= 0; i-- {
		c := ps[i]
		if !have[c.Table] {
			continue // nothing of ours there; touching it could create it
		}
		rm, err := removeChain(fr.ipt, c)
		removed = append(removed, rm...)
		if err != nil {
			return removed, fmt.Errorf("remove %s %s/%s: %w", fr.fam.Name, c.Table, c.Name, err)
		}
	}
	if !fr.ipt.CanDropTables() {
		return removed, nil
	}
	rm, err := dropMadeTables(fr)
	return append(removed, rm...), err
}

// removeChain deletes every jump to c from its hook, then c itself. When c
// does not exist no jump to it can either (iptables refuses both a jump to a
// missing chain and deleting a chain still jumped to; and -C of such a jump
// fails with exit status 2, not 1).
func removeChain(ipt runner, c chainPlan) ([]string, error) {
	var removed []string
	ok, err := ipt.ChainExists(c.Table, c.Name)
	if err != nil || !ok {
		return nil, err
	}
	for n := 0; ; n++ {
		ok, err := ipt.Exists(c.Table, c.Hook, c.Jump.Spec()...)
		if err != nil {
			return removed, fmt.Errorf("check jump from %s: %w", c.Hook, err)
		}
		if !ok {
			break
		}
		if n == maxJumps {
			return removed, fmt.Errorf("jump from %s: still there after %d deletes", c.Hook, n)
		}
		if err := ipt.Delete(c.Table, c.Hook, c.Jump.Spec()...); err != nil {
			return removed, fmt.Errorf("delete jump from %s: %w", c.Hook, err)
		}
		removed = append(removed, c.Table+"/"+c.Hook+" jump")
	}
	if err := ipt.ClearChain(c.Table, c.Name); err != nil {
		return removed, err
	}
	if err := ipt.DeleteChain(c.Table, c.Name); err != nil {
		return removed, err
	}
	return append(removed, c.Table+"/"+c.Name+" chain"), nil
}

// dropMadeTables deletes the tables Install created (they carry the
// ChainMadeTable marker) when nothing but the marker is left in them; a
// marked table somebody else has used since keeps everything but the marker.
func dropMadeTables(fr familyRunner) ([]string, error) {
	save, err := fr.ipt.Save()
	if err != nil {
		return nil, fmt.Errorf("remove %s: read rules: %w", fr.fam.Name, err)
	}
	var removed []string
	for _, t := range tables() {
		sec, ok := tableSection(save, t)
		if !ok || !hasChain(sec, ChainMadeTable) {
			continue
		}
		if onlyMarker(sec) {
			if err := fr.ipt.DropTable(t); err != nil {
				return removed, fmt.Errorf("remove %s table %s: %w", fr.fam.Name, t, err)
			}
			removed = append(removed, t+" table")
			continue
		}
		if err := fr.ipt.DeleteChain(t, ChainMadeTable); err != nil {
			return removed, fmt.Errorf("remove %s %s/%s: %w", fr.fam.Name, t, ChainMadeTable, err)
		}
		removed = append(removed, t+"/"+ChainMadeTable+" chain (table kept: others use it)")
	}
	return removed, nil
}
