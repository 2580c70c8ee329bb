package main

import (
	"fmt"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// kind is what serves a target.
type kind int

const (
	kindDirect     kind = iota // fakeimds itself
	kindNginx                  // nginx, a plain reverse proxy
	kindNginxCache             // nginx with proxy_cache
	kindGuard                  // imdsguard, cache off
	kindGuardCache             // imdsguard, cache on
)

// target is one server the load is measured against. The plan fills ID to
// Port; the bed, once the server runs, the rest.
type target struct {
	ID       string // (a) to (e), (d') and (e') for imdsguard B
	Name     string // as the report names it
	Kind     kind
	Build    string // "A" or "B" for imdsguard, "" for the others
	Host     string // the address clients ask; "" is 127.0.0.1
	Port     int
	ClientNS string            // the network namespace wrk runs in
	Header   string            // the token header wrk sends
	Proc     *testbed.Proc     // the server (nginx: its master)
	Upstream *testbed.FakeIMDS // the fakeimds behind it (or it itself)
}

// Cached reports whether the target answers repeated reads from a cache
// (its upstream GETs are then not one per request).
func (tg *target) Cached() bool { return tg.Kind == kindNginxCache || tg.Kind == kindGuardCache }

// Addr is where clients of the target connect.
func (tg *target) Addr() string {
	if tg.Host == "" {
		return testbed.HostPort("127.0.0.1", tg.Port)
	}
	return testbed.HostPort(tg.Host, tg.Port)
}

// Label is the ID and the name: "(e) imdsguard cached".
func (tg *target) Label() string { return "(" + tg.ID + ") " + tg.Name }

// The targets' IDs. Those of imdsguard: A is -imdsguard, B -imdsguard-b.
const (
	idDirect     = "a"
	idNginx      = "b"
	idNginxCache = "c"
	idUncachedA  = "d"
	idCachedA    = "e"
	idUncachedB  = "d'"
	idCachedB    = "e'"
)

// Ports in the bench namespace, which has nothing else listening.
const (
	fakePort  = 8990 // fakeimds
	firstPort = 9001 // the targets', one each in plan order
)

// planTargets lists the targets, in the order each round runs them:
// direct, nginx plain and cached, imdsguard uncached and cached, then, for
// an A/B, the second build uncached and cached.
func planTargets(withB bool) []*target {
	ts := []*target{
		{ID: idDirect, Name: "direct (fakeimds)", Kind: kindDirect, Port: fakePort},
		{ID: idNginx, Name: "nginx", Kind: kindNginx},
		{ID: idNginxCache, Name: "nginx proxy_cache", Kind: kindNginxCache},
		{ID: idUncachedA, Name: "imdsguard uncached", Kind: kindGuard, Build: "A"},
		{ID: idCachedA, Name: "imdsguard cached", Kind: kindGuardCache, Build: "A"},
	}
	if withB {
		ts = append(ts,
			&target{ID: idUncachedB, Name: "imdsguard B uncached", Kind: kindGuard, Build: "B"},
			&target{ID: idCachedB, Name: "imdsguard B cached", Kind: kindGuardCache, Build: "B"})
	}
	for i, tg := range ts[1:] {
		tg.Port = firstPort + i
	}
	return ts
}

// byID finds a target of the plan.
func byID(ts []*target, id string) (*target, error) {
	for _, tg := range ts {
		if tg.ID == id {
			return tg, nil
		}
	}
	return nil, fmt.Errorf("no target %q", id)
}
