package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"

	"github.com/imdsguard/imdsguard/policy"
	"github.com/imdsguard/imdsguard/proxy"
	"github.com/imdsguard/imdsguard/proxy/config"
	"github.com/imdsguard/imdsguard/proxy/identity"
	"github.com/imdsguard/imdsguard/proxy/redirect"
	"github.com/imdsguard/imdsguard/proxy/token"
	"github.com/imdsguard/imdsguard/proxy/upstream"
)

// daemon is the running imdsguard: the pieces built from one configuration.
type daemon struct {
	cfg   *config.Config
	log   *slog.Logger
	audit *slog.Logger
	proxy *proxy.Proxy
	up    *upstream.Client
	rules *redirect.Rules // nil when redirect.ipv4 and redirect.ipv6 are off
	who   *identity.Resolver
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
	up, err := upstream.New(upstream.Options{
		Config:    cfg.Upstream,
		Mark:      upstreamMark(cfg),
		UserAgent: "imdsguard/" + version,
		Log:       log,
	})
	if err != nil {
		return nil, err
	}
	d := &daemon{cfg: cfg, log: log, audit: log.With("log", "audit"), up: up}
	if redirecting(cfg) {
		if d.rules, err = newRules(cfg, log); err != nil {
			return nil, err
		}
	}
	d.who = identity.NewResolver(identity.Options{Log: log, InterfaceFor: d.interfaceFor})
	d.proxy = proxy.New(proxy.Options{
		Upstream:       up,
		Minter:         token.NewMinter(key),
		Policy:         pol,
		StripForwarded: cfg.ForwardedHeaders == config.ForwardedStrip,
		HopLimit:       cfg.Tokens.HopLimit,
		Identify:       d.who.Identify,
		Observe:        d.observe,
		Log:            log,
	})
	return d, nil
}

// interfaceFor names the container interface that owns a local address.
func (d *daemon) interfaceFor(a netip.Addr) string {
	if d.rules == nil {
		return ""
	}
	return d.rules.InterfaceFor(a)
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

func (d *daemon) observe(ev *proxy.Event) {
	ev.Log(d.audit)
}

// listenAddrs are loopback, where OUTPUT's REDIRECT lands, and every
// address of a family whose PREROUTING rules redirect containers: their
// REDIRECT lands on the ingress interface's own address. The IMDSGUARD-IN
// chain keeps the port closed to everything else.
func (d *daemon) listenAddrs() []string {
	port := strconv.Itoa(d.cfg.Listen.Port)
	v4, v6 := "127.0.0.1", "::1"
	if len(d.cfg.Redirect.ContainerInterfaces) > 0 {
		if d.cfg.Redirect.IPv4 {
			v4 = "0.0.0.0"
		}
		if d.cfg.Redirect.IPv6 {
			v6 = "::"
		}
	}
	return []string{net.JoinHostPort(v4, port), net.JoinHostPort(v6, port)}
}

// serve runs until ctx ends: the rules installed first and kept in place,
// the proxy on its listeners, reloads on SIGHUP. On the way out the rules
// stay (redirect.keep_on_exit): callers get "connection refused", never IMDS.
func (d *daemon) serve(ctx context.Context) error {
	if d.rules != nil {
		if err := d.rules.Install(ctx); err != nil {
			return fmt.Errorf("install redirect rules (needs root or CAP_NET_ADMIN): %w", err)
		}
		kept := make(chan error, 1)
		go func() { kept <- d.rules.Keep(ctx) }()
		defer func() {
			if err := <-kept; err != nil {
				d.log.Error("redirect rules", "err", err)
			}
		}()
	}
	lns, err := proxy.Listen(d.listenAddrs(), d.log)
	if err != nil {
		return err
	}
	for i := range lns {
		lns[i] = proxy.Admit(lns[i], d.log)
	}
	defer d.who.Close()
	go d.reloads(ctx)
	addrs := make([]string, len(lns))
	for i, ln := range lns {
		addrs[i] = ln.Addr().String()
	}
	d.log.Info("imdsguard serving", "version", version, "listen", addrs, "upstream", d.cfg.Upstream.URL, "rules", d.rulesState(),
		"config", orDefault(d.cfg.File, "(built-in defaults)"), "policy_mode", d.proxy.Policy().Mode().String())
	err = proxy.Serve(ctx, d.proxy, lns)
	d.log.Info("imdsguard stopped", "err", err)
	return err
}

// reloads re-reads the policy on every SIGHUP. An invalid file is refused
// and logged; the policy in force stays.
func (d *daemon) reloads(ctx context.Context) {
	for range hangups(ctx) {
		if err := d.reload(); err != nil {
			d.log.Error("reload refused; the previous policy stays in force", "err", err)
			continue
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

func (d *daemon) rulesState() string {
	if d.rules == nil {
		return "off (endpoint only)"
	}
	return "installed (iptables " + d.rules.Backend() + ")"
}
