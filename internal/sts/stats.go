package sts

import (
	"sync/atomic"
	"time"
)

// counters are the Broker's running counts.
type counters struct {
	calls     [len(kindNames)]atomic.Uint64
	gets      [len(outcomeNames)]atomic.Uint64
	refreshes atomic.Uint64
}

func (c *counters) call(k Kind)   { c.calls[k].Add(1) }
func (c *counters) add(o Outcome) { c.gets[o].Add(1) }

// Stats is a snapshot of what the Broker did and holds.
type Stats struct {
	Calls     map[Kind]uint64    // AssumeRole calls by outcome
	Gets      map[Outcome]uint64 // credential reads by how they were answered
	Refreshes uint64             // background refreshes started
	Sessions  int                // role sessions held
	// RefreshLag is how far the most overdue refresh is behind its time
	// (0 when none is): it grows while STS fails or the bucket is empty.
	RefreshLag time.Duration
}

// Stats returns a snapshot.
func (b *Broker) Stats() Stats {
	s := Stats{Calls: map[Kind]uint64{}, Gets: map[Outcome]uint64{}, Refreshes: b.n.refreshes.Load()}
	for _, k := range Kinds() {
		s.Calls[k] = b.n.calls[k].Load()
	}
	for o := range outcomeNames {
		s.Gets[Outcome(o)] = b.n.gets[o].Load()
	}
	now := time.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	s.Sessions = len(b.entries)
	for _, e := range b.entries {
		if !e.refreshAt.IsZero() && now.After(e.refreshAt) {
			s.RefreshLag = max(s.RefreshLag, now.Sub(e.refreshAt))
		}
	}
	return s
}

// Session is one held role session, for `imdsguard roles`.
type Session struct {
	Key           string // roles.Session.Key
	RoleARN, Name string
	Expiration    time.Time // zero: no credentials yet
	LastError     string
}

// Sessions lists the role sessions held.
func (b *Broker) Sessions() []Session {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]Session, 0, len(b.entries))
	for _, e := range b.entries {
		s := Session{Key: e.key, RoleARN: e.sess.RoleARN, Name: e.sess.Name}
		if e.creds != nil {
			s.Expiration = e.creds.Expiration
		}
		if e.err != nil {
			s.LastError = e.err.Error()
		}
		out = append(out, s)
	}
	return out
}
