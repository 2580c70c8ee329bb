package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/imdsguard/imdsguard/policy"
	"github.com/imdsguard/imdsguard/proxy"
	"github.com/imdsguard/imdsguard/proxy/config"
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
	d.proxy = proxy.New(proxy.Options{
		Upstream:       up,
		Minter:         token.NewMinter(key),
		Policy:         pol,
		StripForwarded: cfg.ForwardedHeaders == config.ForwardedStrip,
		HopLimit:       cfg.Tokens.HopLimit,
		Observe:        d.observe,
		Log:            log,
	})
	return d, nil
}

// upstreamMark is the firewall mark of upstream sockets: needed only when
// redirect rules would otherwise send them back to the proxy.
func upstreamMark(cfg *config.Config) uint32 {
	if cfg.Redirect.IPv4 || cfg.Redirect.IPv6 {
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

func (d *daemon) listenAddrs() []string {
	port := strconv.Itoa(d.cfg.Listen.Port)
	return []string{net.JoinHostPort("127.0.0.1", port), net.JoinHostPort("::1", port)}
}

// serve runs until ctx ends: the proxy on its listeners, and reloads on SIGHUP.
func (d *daemon) serve(ctx context.Context) error {
	lns, err := proxy.Listen(d.listenAddrs(), d.log)
	if err != nil {
		return err
	}
	go d.reloads(ctx)
	addrs := make([]string, len(lns))
	for i, ln := range lns {
		addrs[i] = ln.Addr().String()
	}
	d.log.Info("imdsguard serving", "version", version, "listen", addrs, "upstream", d.cfg.Upstream.URL,
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
