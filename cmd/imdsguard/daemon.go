package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"

	"github.com/imdsguard/imdsguard/internal/admin"
	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/cache"
	"github.com/imdsguard/imdsguard/internal/config"
	"github.com/imdsguard/imdsguard/internal/identity"
	"github.com/imdsguard/imdsguard/internal/metrics"
	"github.com/imdsguard/imdsguard/internal/redirect"
	"github.com/imdsguard/imdsguard/internal/token"
	"github.com/imdsguard/imdsguard/internal/upstream"
	"github.com/imdsguard/imdsguard/internal/usage"
	"github.com/imdsguard/imdsguard/internal/workload"
	"github.com/imdsguard/imdsguard/policy"
	"github.com/imdsguard/imdsguard/proxy"
)

// daemon is the running imdsguard: the pieces built from one configuration.
type daemon struct {
	cfg     *config.Config
	log     *slog.Logger
	audit   *audit.Log
	proxy   *proxy.Proxy
	up      *upstream.Client
	cache   *cache.Cache    // in front of up; with cache.enabled false it passes every read through
	rules   *redirect.Rules // nil when redirect.ipv4 and redirect.ipv6 are off
	who     *identity.Resolver
	rts     *runtimes
	work    *workload.Cache // what the runtimes say of container callers
	usage   *usage.Table
	metrics *metrics.Metrics
	pid     int
}

func newDaemon(cfg *config.Config, log *slog.Logger) (*daemon, error) {
	key, err := token.LoadKey(cfg.Tokens.KeyFile)
	if err != nil {
		return nil, err
	}
	pol, err := compilePolicy(cfg, log)
	if err != nil {
		return nil, err
	}
	d := &daemon{cfg: cfg, log: log, audit: audit.NewLog(log.With("log", "audit"), cfg.Audit.SummaryInterval.Duration), usage: usage.New(), pid: os.Getpid()}
	d.up, err = upstream.New(upstream.Options{Config: cfg.Upstream, Mark: upstreamMark(cfg), UserAgent: "imdsguard/" + version, Log: log})
	if err != nil {
		return nil, err
	}
	if redirecting(cfg) {
		if d.rules, err = newRules(cfg, log); err != nil {
			return nil, err
		}
	}
	d.cache = cache.New(d.up, cache.Options{Config: cfg.Cache, Log: log})
	d.metrics = metrics.New(metrics.Sources{TokenRefreshes: d.up.TokenPuts, RuleRestores: d.ruleRestores, Cache: d.cache.Stats})
	d.who = identity.NewResolver(identity.Options{Log: log, InterfaceFor: d.interfaceFor})
	if d.rts, err = newRuntimes(cfg.Runtimes, log); err != nil {
		return nil, err
	}
	d.work = workload.New(workload.Options{Runtimes: d.rts.list, Log: log})
	d.proxy = proxy.New(proxy.Options{
		Upstream:       d.cache,
		Minter:         token.NewMinter(key),
		Policy:         pol,
		StripForwarded: cfg.ForwardedHeaders == config.ForwardedStrip,
		HopLimit:       cfg.Tokens.HopLimit,
		Identify:       d.identify,
		Observe:        d.observe,
		Log:            log,
	})
	return d, nil
}

func redirecting(cfg *config.Config) bool { return cfg.Redirect.IPv4 || cfg.Redirect.IPv6 }

// upstreamMark is the firewall mark of upstream sockets: needed only when
// redirect rules would otherwise send them back to the proxy.
func upstreamMark(cfg *config.Config) uint32 {
	if redirecting(cfg) {
		return redirect.Mark
	}
	return 0
}

func compilePolicy(cfg *config.Config, log *slog.Logger) (*policy.Policy, error) {
	pol, warns, err := policy.Compile(cfg.Policy, policy.SystemNames{})
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	for _, w := range config.Warn(cfg, "policy", warns) {
		log.Warn("policy warning", "warning", w)
	}
	return pol, nil
}

// identify is the per-connection identity, with failures counted (the
// resolver logs them), and, for a caller whose cgroup names a container,
// what its runtime says (waiting at most workload.DefaultWait).
func (d *daemon) identify(c net.Conn) (id identity.Caller) {
	id = d.who.Identify(c)
	if id.Unknown != "" {
		d.metrics.IdentityFailed()
	}
	if id.Container != "" {
		res := d.work.Find(context.Background(), id.Container, id.Cgroup)
		id.Workload, id.WorkloadUnknown = res.Workload, res.Reason
	}
	return id
}

// observe takes every request's event: the audit line, the IMDSv1 usage
// table, the metrics. The daemon's own watchdog probes are not callers.
func (d *daemon) observe(ev *audit.Event) {
	if ev.Caller.PID == d.pid {
		return
	}
	d.audit.Record(ev)
	d.usage.Record(ev)
	d.metrics.Observe(ev)
}

// interfaceFor names the container interface a container caller at
// address a came in through.
func (d *daemon) interfaceFor(a netip.Addr) string {
	if d.rules == nil {
		return ""
	}
	return d.rules.InterfaceFor(a)
}

func (d *daemon) ruleRestores() uint64 {
	if d.rules == nil {
		return 0
	}
	return d.rules.Restores()
}

// listenAddrs are loopback, where OUTPUT's REDIRECT lands, and the landing
// address of each family whose PREROUTING rules DNAT containers there (the
// rules put it on lo before the listeners open). Nothing else: the proxy
// port has no socket on any address the network could reach. The
// IMDSGUARD-IN chain and proxy.Admit keep even these closed to everything
// but local callers and redirected metadata traffic.
func (d *daemon) listenAddrs() []string {
	port := strconv.Itoa(d.cfg.Listen.Port)
	out := []string{net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("::1", port)}
	if redirecting(d.cfg) {
		for _, a := range d.cfg.Redirect.LandingAddrs() {
			out = append(out, net.JoinHostPort(a.String(), port))
		}
	}
	return out
}

// serve runs until ctx ends. Order matters: the rules go in first (so
// metadata traffic is refused rather than sent to IMDS while the daemon
// starts), then every listener opens (so a port conflict fails the start,
// loudly), then systemd hears READY. On the way out the rules stay
// (redirect.keep_on_exit): callers get "connection refused", never IMDS.
func (d *daemon) serve(ctx context.Context) error {
	defer d.who.Close()
	defer d.rts.Close()
	if d.rules != nil {
		defer d.rules.Close()
	}
	defer d.up.Close() // after the cache (deferred: runs last)
	defer d.cache.Close()
	if d.rules != nil {
		// Installed here, not only by Keep (whose own Install then finds
		// everything in place and writes nothing): a start that cannot put
		// the rules in must fail before a listener opens or systemd hears
		// READY, not be retried in the background.
		if err := d.rules.Install(ctx); err != nil {
			return fmt.Errorf("install redirect rules (needs root or CAP_NET_ADMIN): %w", err)
		}
	}
	l, err := d.listen()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var bg sync.WaitGroup
	d.background(ctx, &bg, l)
	// The audit log outlives the proxy: requests still finishing during the
	// graceful shutdown are written, then the pending summaries.
	auditCtx, stopAudit := context.WithCancel(context.WithoutCancel(ctx))
	audited := make(chan struct{})
	go func() { d.audit.Run(auditCtx); close(audited) }()
	d.ready(l.proxy)
	err = proxy.Serve(ctx, d.proxy, l.proxy)
	cancel()
	bg.Wait()
	stopAudit()
	<-audited
	d.log.Info("imdsguard stopped", "err", err, "rules", d.rulesOnExit())
	return err
}

// listeners are every socket the daemon serves on.
type listeners struct {
	proxy   []net.Listener
	admin   net.Listener
	metrics net.Listener // nil when metrics.listen is ""
}

func (d *daemon) listen() (*listeners, error) {
	var l listeners
	var err error
	if l.proxy, err = proxy.Listen(d.listenAddrs(), d.log); err != nil {
		return nil, err
	}
	for i := range l.proxy {
		l.proxy[i] = proxy.Admit(l.proxy[i], d.log)
	}
	if l.admin, err = admin.Listen(d.cfg.Admin.Socket); err != nil {
		return nil, errors.Join(err, l.close())
	}
	if d.cfg.Metrics.Listen != "" {
		if l.metrics, err = net.Listen("tcp", d.cfg.Metrics.Listen); err != nil {
			return nil, errors.Join(fmt.Errorf("metrics.listen %s: %w", d.cfg.Metrics.Listen, err), l.close())
		}
	}
	return &l, nil
}

func (l *listeners) close() error {
	var errs []error
	for _, ln := range append(l.proxy, l.admin, l.metrics) {
		if ln != nil {
			errs = append(errs, ln.Close())
		}
	}
	return errors.Join(errs...)
}

// background starts what runs beside the proxy until ctx ends: keeping the
// rules, the admin socket, metrics, reloads and the watchdog.
func (d *daemon) background(ctx context.Context, wg *sync.WaitGroup, l *listeners) {
	run := func(name string, f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				d.log.Error(name+" stopped", "err", err)
			}
		}()
	}
	if d.rules != nil {
		run("redirect rules", func() error { return d.rules.Keep(ctx) })
	}
	run("admin socket", func() error { return admin.Serve(ctx, l.admin, d.usage, d.log) })
	run("runtime events", func() error { d.work.Run(ctx); return nil })
	if l.metrics != nil {
		run("metrics", func() error { return d.metrics.Serve(ctx, l.metrics, d.log) })
	}
	run("reloads", func() error { d.reloads(ctx); return nil })
	run("watchdog", func() error { return d.watchdog(ctx, l.proxy[0].Addr().String()) })
}

func (d *daemon) rulesOnExit() string {
	switch {
	case d.rules == nil:
		return "none (endpoint only)"
	case d.cfg.Redirect.KeepOnExit:
		return "kept: metadata traffic is refused until imdsguard runs again (fail closed)"
	}
	return "removed (redirect.keep_on_exit: false)"
}

func (d *daemon) rulesState() string {
	if d.rules == nil {
		return "off (endpoint only)"
	}
	return "installed (iptables " + d.rules.Backend() + ")"
}

// reloads re-reads the policy on every SIGHUP. An invalid file is refused
// and logged; the policy in force stays.
func (d *daemon) reloads(ctx context.Context) {
	for range hangups(ctx) {
		err := d.reload()
		d.metrics.Reloaded(err == nil)
		if err != nil {
			d.log.Error("reload refused; the previous policy stays in force", "err", err)
		}
	}
}

func (d *daemon) reload() error {
	path := d.cfg.File
	if path == "" {
		path = config.DefaultPath
	}
	cfg, err := config.Load(path, d.cfg.File == "")
	if err != nil {
		return err
	}
	pol, err := compilePolicy(cfg, d.log)
	if err != nil {
		return err
	}
	d.proxy.SetPolicy(pol)
	d.log.Info("policy reloaded", "config", orDefault(cfg.File, "(built-in defaults)"), "rules", len(cfg.Policy.Rules), "mode", pol.Mode().String())
	return nil
}
