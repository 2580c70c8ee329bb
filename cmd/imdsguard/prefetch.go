package main

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/imdsguard/imdsguard/internal/roles"
	"github.com/imdsguard/imdsguard/internal/workload"
	"github.com/imdsguard/imdsguard/policy"
	"github.com/imdsguard/imdsguard/proxy"
)

// prefetcher follows the runtimes' container events for the STS broker: a
// container that appears with a role of its own (a pod sandbox with a
// kube2iam annotation, a container a rule gives a role) has its role's
// credentials fetched before its first request (the start-up race of
// kube2iam and kiam), and a role session whose last container is gone
// is forgotten. It is best effort: a caller's own request resolves its
// role again and waits for the fetch if it is not done.
type prefetcher struct {
	lookup  func(ctx context.Context, id string) *workload.Workload // nil: gone, or the runtime did not answer
	policy  func() *policy.Policy
	roles   func() *roles.Resolver
	broker  sessionBroker
	log     *slog.Logger
	limit   chan struct{} // bounds the lookups running at once
	timeout time.Duration

	mu   sync.Mutex
	held map[string]roles.Session // container id -> its role session
	refs map[string]int           // session key -> containers holding it
}

// sessionBroker is what the prefetcher asks of the STS broker.
type sessionBroker interface {
	Prefetch(roles.Session)
	Forget(roles.Session)
}

// prefetchLookups bounds the event lookups running at once.
const prefetchLookups = 8

func newPrefetcher(lookup func(context.Context, string) *workload.Workload, pol func() *policy.Policy, res func() *roles.Resolver, b sessionBroker, log *slog.Logger) *prefetcher {
	return &prefetcher{lookup: lookup, policy: pol, roles: res, broker: b, log: log, limit: make(chan struct{}, prefetchLookups),
		timeout: 5 * time.Second, held: map[string]roles.Session{}, refs: map[string]int{}}
}

// changed is workload.Options.Changed: it must not block the event
// stream, so the lookup runs on its own goroutine. Where no workload can
// have a role (no rule's role:, no roles.namespaces) it does nothing: the
// runtimes are asked no more than without roles.
func (p *prefetcher) changed(id string) {
	if !p.active() {
		return
	}
	go func() {
		p.limit <- struct{}{}
		defer func() { <-p.limit }()
		p.update(id)
	}()
}

func (p *prefetcher) active() bool {
	return p.policy().GivesRoles() || p.roles().TakesAnnotations()
}

// update looks container id up and prefetches or forgets its session.
func (p *prefetcher) update(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	w := p.lookup(ctx, id)
	var sess roles.Session
	if w != nil {
		sess, _ = p.sessionOf(w)
	}
	p.mu.Lock()
	old, had := p.held[id]
	switch {
	case had && w == nil: // gone
		delete(p.held, id)
		p.release(old)
	case !had && sess.RoleARN != "":
		p.held[id] = sess
		p.refs[sess.Key()]++
	case had && sess.RoleARN != "" && sess.Key() != old.Key():
		p.held[id] = sess
		p.refs[sess.Key()]++
		p.release(old)
	}
	p.mu.Unlock()
	if sess.RoleARN != "" {
		p.log.Debug("prefetching role credentials", "container", id, "role", sess.RoleARN, "session", sess.Name)
		p.broker.Prefetch(sess)
	}
}

// release drops one container's hold on s, and forgets s with its last;
// p.mu is held.
func (p *prefetcher) release(s roles.Session) {
	k := s.Key()
	if p.refs[k]--; p.refs[k] > 0 {
		return
	}
	delete(p.refs, k)
	p.broker.Forget(s)
}

// sessionOf is the role session a container would be served, when the
// policy lets it read its role's credentials: resolved as the proxy
// resolves it for a request from the container (proxy.SubjectOf).
func (p *prefetcher) sessionOf(w *workload.Workload) (roles.Session, bool) {
	caller := policy.Caller{Container: true, Workload: w}
	pol, res := p.policy(), p.roles()
	if res == nil {
		return roles.Session{}, false
	}
	probe := policy.Request{Caller: caller, Path: "/meta-data/iam/security-credentials"}
	d := pol.Decide(probe)
	a := res.Resolve(proxy.SubjectOf(&caller, d.Rule, d.Role))
	if a.Session.RoleARN == "" {
		return roles.Session{}, false
	}
	probe.Path += "/" + a.Session.RoleName
	if d = pol.Decide(probe); !d.Allow && d.Enforced {
		return roles.Session{}, false
	}
	return a.Session, true
}

// holders returns the containers holding each session, by session key.
func (p *prefetcher) holders() map[string][]string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string][]string{}
	for id, s := range p.held {
		out[s.Key()] = append(out[s.Key()], id)
	}
	return out
}
