package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	sd "github.com/coreos/go-systemd/v22/daemon"
)

// sdListeners are the listening sockets systemd passed (imdsguard.socket,
// LISTEN_FDS), none when it passed none. Keeping the proxy's sockets in
// systemd means a restart or an upgrade refuses no connection: they wait
// in the socket's queue while the daemon is away.
func sdListeners(log interface{ Warn(string, ...any) }) []net.Listener {
	lns, err := activation.Listeners()
	if err != nil {
		log.Warn("systemd passed sockets that are not listeners", "err", err)
	}
	var out []net.Listener
	for _, ln := range lns {
		if ln != nil {
			out = append(out, ln)
		}
	}
	return out
}

// ready tells systemd (Type=notify) that the rules are in place and the
// proxy listens, and logs the same.
func (d *daemon) ready(lns []net.Listener) {
	addrs := make([]string, len(lns))
	for i, ln := range lns {
		addrs[i] = ln.Addr().String()
	}
	d.log.Info("imdsguard serving", "version", version, "listen", addrs, "upstream", d.cfg.Upstream.URL,
		"rules", d.rulesState(), "config", orDefault(d.cfg.File, "(built-in defaults)"),
		"policy_mode", d.proxy.Policy().Mode().String(), "admin", d.cfg.Admin.Socket, "metrics", orDefault(d.cfg.Metrics.Listen, "off"))
	status := "STATUS=serving on " + strings.Join(addrs, ", ") + "; rules " + d.rulesState()
	if _, err := sd.SdNotify(false, sd.SdNotifyReady+"\n"+status); err != nil {
		d.log.Warn("sd_notify READY", "err", err)
	}
}

// watchdog pings systemd's watchdog (WatchdogSec) at half its interval, but
// only after a request to the proxy on addr was answered: a daemon that no
// longer serves gets restarted. The probe is a token OPTIONS, answered
// locally (IMDS is not asked); the daemon's own probes are not audited.
func (d *daemon) watchdog(ctx context.Context, addr string) error {
	every, err := sd.SdWatchdogEnabled(false)
	if err != nil || every == 0 {
		return err
	}
	client := &http.Client{Timeout: every / 4, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	tick := time.NewTicker(every / 2)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		if err := probe(ctx, client, addr); err != nil {
			d.log.Error("watchdog probe failed; not pinging systemd", "err", err)
			continue
		}
		sd.SdNotify(false, sd.SdNotifyWatchdog)
	}
}

func probe(ctx context.Context, c *http.Client, addr string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodOptions, "http://"+addr+"/latest/api/token", nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("probe answered %s", resp.Status)
	}
	return nil
}
