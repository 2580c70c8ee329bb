package redirect

import (
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Options configure New.
type Options struct {
	Config  Config
	Port    int    // the proxy's listen port, the REDIRECT target
	Mark    uint32 // the daemon's socket mark; 0 means Mark
	Backend string // "nft", "legacy", or "" to detect (see detectBackend)
	Log     *slog.Logger
	// StateFile, when set, keeps the last fully verified picture of the
	// rules across restarts (state.go), so that a restart finding them
	// intact serves after one iptables-save per family.
	StateFile string
	// LocalRedirectPort is the local redirect listener's port
	// (listen.local_redirect_port), 0 for none: IMDSGUARD-IN lets only
	// the container interfaces reach it (localRedirectInRules).
	LocalRedirectPort int
}

// Rules manages imdsguard's netfilter rules in the network namespace it was
// made in (the one of the thread that calls its methods).
type Rules struct {
	cfg     Config
	params  params
	backend string
	log     *slog.Logger

	active []familyRunner // the families the configuration redirects
	all    []familyRunner // every family this host has: Remove cleans them all

	mu       sync.Mutex          // one install/remove/check at a time
	snap     map[string][]string // family → reading.lines verified by the last full check
	seen     map[string]seenStamp
	below    map[string]string // "family table/hook" → rules above a jump accepted (logged)
	insists  insisters
	episodes map[string]*episode // family → the restores of one outside change, repeated
	inPlace  map[string]*atomic.Bool
	restores atomic.Uint64
	handed   atomic.Bool // HandedOver: Keep's end leaves the rules to a successor
	// statePath is Options.StateFile: the verified references (snap)
	// kept across restarts.
	statePath string

	every time.Duration // Keep's check interval
	// backstop: with a stamp that is not exact (legacy), Keep reads the
	// rules at least this often even when the stamp stays the same.
	backstop time.Duration
	kernel
	links linkCache

	routerMu sync.Mutex
	router   router // opened by the first InterfaceFor; nil before
}

// router answers route lookups for InterfaceFor: the real one keeps one
// netlink socket (a new one per connection would cost more than the
// lookup), in the namespace of the thread that first asked.
type router interface {
	RouteTo(a netip.Addr) (index int, err error) // 0: a local address, or no route
	LinkName(index int) (string, error)
	Close()
}

// Close releases the route lookups' socket, if InterfaceFor opened one.
// The rules stay as they are.
func (r *Rules) Close() {
	r.routerMu.Lock()
	defer r.routerMu.Unlock()
	if r.router != nil {
		r.router.Close()
		r.router = nil
	}
}

// kernel is the netlink side of Rules: links, the landing addresses on lo,
// route lookups and conntrack. Each part acts in the network namespace of
// the calling thread, as the iptables tools do; fakes stand in for them in
// tests.
type kernel struct {
	openLinks openLinks
	lo        loAddrs
	// openRouter opens the route lookups InterfaceFor makes.
	openRouter func() (router, error)
	// flushConntrack deletes a family's conntrack entries of metadata
	// flows that go to IMDS itself (see conntrack_linux.go).
	flushConntrack func(family) (uint, error)
}

// netlinkKernel is the real kernel.
var netlinkKernel = kernel{openLinks: netlinkLinks, lo: netlinkLo{}, openRouter: openNetlinkRouter, flushConntrack: netlinkConntrack}

// New checks the options, picks the backend (detecting it unless
// o.Backend names one) and returns the rules, not yet installed.
func New(o Options) (*Rules, error) {
	if err := o.Config.Validate(); err != nil {
		return nil, fmt.Errorf("redirect config: %w", err)
	}
	if o.Port < 1 || o.Port > 65535 {
		return nil, fmt.Errorf("redirect: proxy port %d is out of range (1..65535)", o.Port)
	}
	if err := checkLocalRedirect(o); err != nil {
		return nil, err
	}
	log := o.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	name, fams, err := openBackend(o.Backend, o.Config, log)
	if err != nil {
		return nil, err
	}
	return newRules(o, name, fams, netlinkKernel), nil
}

// checkLocalRedirect refuses a local redirect port the filter rule could
// not close to the network (config.Validate says the same, by field).
func checkLocalRedirect(o Options) error {
	p := o.LocalRedirectPort
	switch {
	case p == 0:
		return nil
	case p < 0 || p > 65535 || p == o.Port:
		return fmt.Errorf("redirect: local redirect port %d is out of range or the proxy port", p)
	case slices.Contains(o.Config.ContainerInterfaces, "+"):
		return fmt.Errorf("redirect: a local redirect port needs the container interfaces named: \"+\" takes in the network interfaces")
	}
	return nil
}

// newRules assembles Rules around runners: New's real ones, or fakes.
func newRules(o Options, backend string, fams []familyRunner, k kernel) *Rules {
	if o.Mark == 0 {
		o.Mark = Mark
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	r := &Rules{
		cfg:      o.Config,
		params:   o.Config.params(o.Port, o.Mark).withLocalRedirect(o.LocalRedirectPort),
		backend:  backend,
		log:      o.Log.With("component", "redirect", "backend", backend),
		all:      fams,
		snap:     map[string][]string{},
		seen:     map[string]seenStamp{},
		below:    map[string]string{},
		episodes: map[string]*episode{},
		inPlace:  map[string]*atomic.Bool{},
		every:    250 * time.Millisecond,
		backstop: 30 * time.Second,
		kernel:   k,

		statePath: o.StateFile,
	}
	for _, f := range o.Config.families() {
		for _, fr := range fams {
			if fr.fam == f {
				r.active = append(r.active, fr)
				r.inPlace[f.Name] = new(atomic.Bool)
			}
		}
	}
	r.loadState()
	return r
}

// Backend names the iptables backend in use: "nft" or "legacy".
func (r *Rules) Backend() string { return r.backend }

// Restores counts Keep's restores of rules deleted from outside.
func (r *Rules) Restores() uint64 { return r.restores.Load() }
