package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/imdsguard/imdsguard/internal/admin"
	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/cache"
	"github.com/imdsguard/imdsguard/internal/config"
	"github.com/imdsguard/imdsguard/internal/handover"
	"github.com/imdsguard/imdsguard/internal/identity"
	"github.com/imdsguard/imdsguard/internal/metrics"
	"github.com/imdsguard/imdsguard/internal/redirect"
	"github.com/imdsguard/imdsguard/internal/roles"
	"github.com/imdsguard/imdsguard/internal/sts"
	"github.com/imdsguard/imdsguard/internal/token"
	"github.com/imdsguard/imdsguard/internal/upstream"
	"github.com/imdsguard/imdsguard/internal/usage"
	"github.com/imdsguard/imdsguard/internal/workload"
	"github.com/imdsguard/imdsguard/policy"
	"github.com/imdsguard/imdsguard/proxy"
)

// daemon is the running imdsguard: the pieces built from one configuration.
type daemon struct {
	cfg      *config.Config
	log      *slog.Logger
	audit    *audit.Log
	proxy    *proxy.Proxy
	up       *upstream.Client
	cache    *cache.Cache    // in front of up; with cache.enabled false it passes every read through
	rules    *redirect.Rules // nil when redirect.ipv4 and redirect.ipv6 are off
	who      *identity.Resolver
	rts      *runtimes
	work     *workload.Cache // what the runtimes say of container callers
	broker   *sts.Broker     // role credentials (roles:): AssumeRole signed with the node's credentials
	prefetch *prefetcher     // fetches a new container's role credentials ahead, from runtime events
	usage    *usage.Table
	metrics  *metrics.Metrics
	pid      int
	// hup delivers SIGHUP (caught from the start: run); cfgDigest is the
	// digest of the configuration file as it was loaded.
	hup       <-chan os.Signal
	cfgDigest string
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
	if d.broker, err = newBroker(cfg, d.cache, log); err != nil {
		return nil, err
	}
	d.metrics = metrics.New(metrics.Sources{TokenRefreshes: d.up.TokenPuts, TokenFailures: d.up.TokenPutFailures, RuleRestores: d.ruleRestores, Cache: d.cache.Stats, Roles: d.broker.Stats, Rules: d.ruleHealth()})
	d.who = identity.NewResolver(identity.Options{Log: log, InterfaceFor: d.interfaceFor})
	if d.rts, err = newRuntimes(cfg.Runtimes, log); err != nil {
		return nil, err
	}
	// The prefetcher hears the runtimes' events through the workload
	// cache, and asks it and the proxy (policy, roles) once both exist.
	d.prefetch = newPrefetcher(func(ctx context.Context, id string) *workload.Workload { return d.work.Lookup(ctx, id, "").Workload },
		func() *policy.Policy { return d.proxy.Policy() }, func() *roles.Resolver { return d.proxy.Roles() }, d.broker, log)
	d.work = workload.New(workload.Options{Runtimes: d.rts.list, Log: log, Changed: d.prefetch.changed})
	d.proxy = proxy.New(proxy.Options{
		Upstream:       d.cache,
		Minter:         token.NewMinter(key),
		Policy:         pol,
		StripForwarded: cfg.ForwardedHeaders == config.ForwardedStrip,
		HopLimit:       cfg.Tokens.HopLimit,
		Identify:       d.identify,
		Observe:        d.observe,
		Log:            log,
		Roles:          roles.NewResolver(cfg.Roles),
		Credentials:    d.broker,
	})
	return d, nil
}

// newBroker is the STS broker of the roles: section. It reads the node's
// credentials and region from IMDS through imds, the daemon's own cache
// and upstream client (never the redirect), and its sockets carry the
// upstream mark, so that no redirect rule catches them. The endpoint is
// roles.sts_endpoint, else AWS_ENDPOINT_URL_STS (or AWS_ENDPOINT_URL) from
// the daemon's environment, else the region's.
func newBroker(cfg *config.Config, imds sts.Fetcher, log *slog.Logger) (*sts.Broker, error) {
	endpoint, err := sts.Endpoint(cfg.Roles.STSEndpoint)
	if err != nil {
		return nil, fmt.Errorf("roles: STS endpoint: %w", err)
	}
	if endpoint != "" {
		log.Info("STS endpoint", "endpoint", endpoint)
	}
	client := sts.NewClient(sts.ClientOptions{
		Endpoint:    endpoint,
		Region:      sts.NodeRegion(imds),
		Credentials: sts.NodeCredentials{IMDS: imds},
		HTTPClient:  sts.NewHTTPClient(upstreamMark(cfg)),
	})
	return sts.New(sts.Options{Assumer: client, Duration: cfg.Roles.SessionDuration.Duration,
		Rate: cfg.Roles.STSRate, Burst: cfg.Roles.STSBurst, Log: log.With("component", "sts")}), nil
}

// lockPoll is how often a successor tries the rules lock while its
// predecessor finishes.
const lockPoll = 20 * time.Millisecond

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

// ruleHealth is the rules' health for the metrics; nil without rules.
func (d *daemon) ruleHealth() func() []redirect.Health {
	if d.rules == nil {
		return nil
	}
	return d.rules.Health
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

// runDir is where the daemon's sockets and the rules lock live: the admin
// socket's directory (/run/imdsguard by default). Two daemons of one node
// meet there to hand over.
func (d *daemon) runDir() string { return filepath.Dir(d.cfg.Admin.Socket) }

// serve runs until ctx ends. Order matters: the rules go in first (so
// metadata traffic is refused rather than sent to IMDS while the daemon
// starts), then every listener opens (so a port conflict fails the start,
// loudly), then systemd hears READY. On the way out the rules stay
// (redirect.keep_on_exit): callers get "connection refused", never IMDS.
//
// When another imdsguard already runs here (the old pod of a surge
// rollout), it keeps the rules lock: this daemon takes its listening
// sockets over instead of binding its own (package handover), and keeps
// the rules once the other lets the lock go. When a successor takes this
// daemon's sockets, it stops accepting, finishes what it holds, leaves the
// rules to the successor and waits to be stopped.
func (d *daemon) serve(ctx context.Context) error {
	defer d.who.Close()
	defer d.rts.Close()
	if d.rules != nil {
		defer d.rules.Close()
	}
	defer d.up.Close() // after the cache (deferred: runs last)
	defer d.cache.Close()
	defer d.broker.Close() // before the cache it reads the node's credentials from
	lockPath := filepath.Join(d.runDir(), handover.LockName)
	var lock *handover.Lock
	if d.rules != nil {
		var err error
		if lock, err = handover.TryLock(lockPath); err != nil {
			return err
		}
		if lock == nil {
			d.log.Info("another imdsguard keeps the rules; taking over from it", "holder_pid", handover.Holder(lockPath))
		} else if err := d.rules.Install(ctx); err != nil {
			// Installed here, not only by Keep (whose own Install then
			// finds everything in place and writes nothing): a start that
			// cannot put the rules in must fail before a listener opens or
			// systemd hears READY, not be retried in the background.
			lock.Release()
			return fmt.Errorf("install redirect rules (needs root or CAP_NET_ADMIN): %w", err)
		}
	}
	l, err := d.listen()
	if err != nil {
		lock.Release()
		return err
	}
	hs, err := handover.Listen(filepath.Join(d.runDir(), handover.SocketName), d.log)
	if err != nil {
		lock.Release()
		return errors.Join(err, l.close())
	}
	// serving ends with ctx or when a successor has taken the listeners.
	serving, stopServing := context.WithCancel(ctx)
	defer stopServing()
	successor := 0
	var bg sync.WaitGroup
	d.background(serving, &bg, l, lock, lockPath)
	bg.Add(1)
	go func() {
		defer bg.Done()
		hs.Serve(serving, l.passable, func(pid int) {
			successor = pid
			if d.rules != nil {
				d.rules.HandedOver()
			}
			d.log.Info("handed the listeners over; no longer accepting", "successor_pid", pid)
			stopServing()
		})
	}()
	// The audit log outlives the proxy: requests still finishing during the
	// graceful shutdown are written, then the pending summaries.
	auditCtx, stopAudit := context.WithCancel(context.WithoutCancel(ctx))
	audited := make(chan struct{})
	go func() { d.audit.Run(auditCtx); close(audited) }()
	d.ready(l.proxy)
	err = proxy.Serve(serving, d.proxy, l.proxy)
	stopServing()
	bg.Wait() // hs.Serve's write of successor happens before this returns
	stopAudit()
	<-audited
	if successor != 0 && err == nil {
		// A DaemonSet would restart a pod that exits: the old pod waits for
		// the controller to delete it.
		d.log.Info("imdsguard handed over; waiting to be stopped", "successor_pid", successor)
		signal.Ignore(syscall.SIGHUP) // no reloads any more, and no death by SIGHUP
		<-ctx.Done()
		d.log.Info("imdsguard stopped", "handed_over_to", successor)
		return nil
	}
	d.log.Info("imdsguard stopped", "err", err, "rules", d.rulesOnExit())
	return err
}

// listeners are every socket the daemon serves on.
type listeners struct {
	proxy   []net.Listener // each behind proxy.Admit
	admin   net.Listener
	metrics net.Listener // nil when metrics.listen is ""
	// raw are the TCP listeners as opened, named for a handover.
	raw []handover.Listener
}

// passable are the listeners a successor takes over: the proxy's and the
// metrics'. (The admin socket is a path: the successor makes its own.)
func (l *listeners) passable() []handover.Listener { return l.raw }

// listen opens every listener. A TCP listener comes, in this order, from
// the imdsguard running here (a handover), from systemd (socket
// activation: imdsguard.socket holds the proxy's sockets across restarts),
// or is bound here.
func (d *daemon) listen() (*listeners, error) {
	inherited := map[string]net.Listener{}
	got, pid, err := handover.Take(filepath.Join(d.runDir(), handover.SocketName))
	if err != nil {
		d.log.Warn("no handover; binding", "err", err)
	}
	for _, h := range got {
		inherited[h.Name] = h.Listener
	}
	if len(got) > 0 {
		d.log.Info("took the listeners over", "from_pid", pid, "listeners", len(got))
	}
	if len(got) == 0 {
		sds := sdListeners(d.log)
		for _, ln := range sds {
			inherited[proxyName(ln.Addr().String())] = ln
		}
		if len(sds) > 0 {
			d.log.Info("using the listening sockets systemd holds (imdsguard.socket)", "sockets", len(sds))
		}
	}
	var l listeners
	take := func(name string, open func() (net.Listener, error)) (net.Listener, error) {
		ln, ok := inherited[name]
		delete(inherited, name)
		if !ok {
			var err error
			if ln, err = open(); ln == nil || err != nil {
				return nil, err
			}
		}
		l.raw = append(l.raw, handover.Listener{Name: name, Listener: ln})
		return ln, nil
	}
	fail := func(err error) (*listeners, error) {
		for _, ln := range inherited {
			ln.Close()
		}
		return nil, errors.Join(err, l.close())
	}
	for _, a := range d.listenAddrs() {
		ln, err := take(proxyName(a), func() (net.Listener, error) { return proxy.ListenOne(a, d.log) })
		if err != nil {
			return fail(err)
		}
		if ln != nil {
			l.proxy = append(l.proxy, proxy.Admit(ln, d.log))
		}
	}
	if d.cfg.Metrics.Listen != "" {
		if l.metrics, err = take("metrics "+d.cfg.Metrics.Listen, func() (net.Listener, error) {
			ln, err := net.Listen("tcp", d.cfg.Metrics.Listen)
			if err != nil {
				return nil, fmt.Errorf("metrics.listen %s: %w", d.cfg.Metrics.Listen, err)
			}
			return ln, nil
		}); err != nil {
			return fail(err)
		}
	}
	// The local redirect listeners (a Cilium Local Redirect Policy's
	// backend, localredirect.go): taken over and handed on like the proxy's
	// own, served beside them behind an admission of their own (after them:
	// l.proxy[0], the watchdog's, stays loopback).
	for _, a := range d.localRedirectAddrs() {
		ln, err := take(proxyName(a), func() (net.Listener, error) { return proxy.ListenOne(a, d.log) })
		if err != nil {
			return fail(fmt.Errorf("listen.local_redirect_port: %w", err))
		}
		if ln != nil {
			l.proxy = append(l.proxy, proxy.AdmitLocalRedirect(ln, d.who.IdentifyLocalRedirect, d.log))
		}
	}
	for name, ln := range inherited {
		d.log.Warn("an inherited listener this configuration does not use; closed", "listener", name)
		ln.Close()
	}
	if l.admin, err = admin.Listen(d.cfg.Admin.Socket); err != nil {
		return nil, errors.Join(err, l.close())
	}
	return &l, nil
}

// proxyName names a proxy listener on addr (host:port) for a handover and
// for systemd's sockets: "proxy 127.0.0.1:8989", "proxy [::1]:8989".
func proxyName(addr string) string {
	if ap, err := netip.ParseAddrPort(addr); err == nil {
		addr = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	}
	return "proxy " + addr
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
//
// The rules are kept only while this daemon holds the rules lock: lock is
// nil when another daemon held it at the start, and Keep waits for it.
func (d *daemon) background(ctx context.Context, wg *sync.WaitGroup, l *listeners, lock *handover.Lock, lockPath string) {
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
		run("redirect rules", func() error {
			if lock == nil {
				var err error
				if lock, err = handover.WaitLock(ctx, lockPath, lockPoll); err != nil {
					return nil // stopped (or handed over) before the lock came
				}
				d.log.Info("took the rules over")
			}
			defer lock.Release()
			return d.rules.Keep(ctx)
		})
	}
	run("admin socket", func() error { return admin.ServeRoles(ctx, l.admin, d.usage, d.roleSessions, d.log) })
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

// reloads re-reads the policy on every SIGHUP and whenever the file's
// content changes (looked at every configPoll): a Kubernetes ConfigMap
// volume is updated by the kubelet swapping a symlink, with no signal to
// anyone. An invalid file is refused and logged; the policy in force
// stays, and the file is tried again once it changes again.
func (d *daemon) reloads(ctx context.Context) {
	path := d.configPath()
	last := d.cfgDigest
	tick := time.NewTicker(configPoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-d.hup:
			if !ok {
				return
			}
			last = fileDigest(path)
		case <-tick.C:
			now := fileDigest(path)
			if now == last {
				continue
			}
			last = now
			d.log.Info("configuration file changed; reloading", "config", path)
		}
		err := d.reload()
		d.metrics.Reloaded(err == nil)
		if err != nil {
			d.log.Error("reload refused; the previous policy stays in force", "err", err)
		}
	}
}

// configPoll is how often reloads looks at the configuration file.
const configPoll = 2 * time.Second

// fileDigest is a digest of the file's content, "" when it cannot be read
// (absent: the built-in defaults).
func fileDigest(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	sum := sha256.Sum256(data)
	return string(sum[:])
}

func (d *daemon) configPath() string {
	if d.cfg.File == "" {
		return config.DefaultPath
	}
	return d.cfg.File
}

func (d *daemon) reload() error {
	cfg, err := config.Load(d.configPath(), d.cfg.File == "")
	if err != nil {
		return err
	}
	pol, err := compilePolicy(cfg, d.log)
	if err != nil {
		return err
	}
	d.proxy.SetPolicy(pol)
	d.proxy.SetRoles(roles.NewResolver(cfg.Roles))
	if stsSettings(cfg.Roles) != stsSettings(d.cfg.Roles) {
		d.log.Warn("roles: base_arn, namespaces and session_tags are reloaded; sts_endpoint, sts_rate, sts_burst and session_duration take effect at the next start")
	}
	d.log.Info("policy reloaded", "config", orDefault(cfg.File, "(built-in defaults)"), "rules", len(cfg.Policy.Rules), "mode", pol.Mode().String())
	return nil
}

// stsSettings are the roles: fields the broker was built with: a reload
// cannot change them.
func stsSettings(c roles.Config) string {
	return fmt.Sprint(c.STSEndpoint, c.STSRate, c.STSBurst, c.SessionDuration.Duration)
}

// roleSessions lists the broker's role sessions with the containers known
// to hold them, for `imdsguard roles`.
func (d *daemon) roleSessions() []admin.RoleSession {
	holders := d.prefetch.holders()
	var out []admin.RoleSession
	for _, s := range d.broker.Sessions() {
		ids := holders[s.Key]
		slices.Sort(ids)
		out = append(out, admin.RoleSession{Role: s.RoleARN, Session: s.Name, Expiration: s.Expiration, LastError: s.LastError, Containers: ids})
	}
	slices.SortFunc(out, func(a, b admin.RoleSession) int { return strings.Compare(a.Role+" "+a.Session, b.Role+" "+b.Session) })
	return out
}
