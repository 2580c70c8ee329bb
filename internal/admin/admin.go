// Package admin is the daemon's root-only control socket: a Unix socket in
// a 0700 directory, mode 0600, that also checks the peer's credentials
// (SO_PEERCRED) on every connection. `imdsguard audit` asks it for the
// IMDSv1 usage table, `imdsguard roles` for the role sessions.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/imdsguard/imdsguard/internal/sockfile"
	"github.com/imdsguard/imdsguard/internal/usage"
)

// UsagePath is where the usage table is served.
const UsagePath = "/v1/usage"

// RolesPath is where the role sessions are served (`imdsguard roles`).
const RolesPath = "/v1/roles"

// RoleSession is one role session the daemon holds for workloads of this
// host: the role, the session name, its credentials' expiry (zero: none
// yet), the last STS error, and the containers known to hold it (from
// the runtimes' events).
type RoleSession struct {
	Role       string    `json:"role"`
	Session    string    `json:"session"`
	Expiration time.Time `json:"expiration,omitzero"`
	LastError  string    `json:"last_error,omitempty"`
	Containers []string  `json:"containers,omitempty"`
}

// Listen makes the socket at path: its directory 0700, a stale socket
// (or a predecessor's, during a handover) replaced, the socket itself 0600.
func Listen(path string) (net.Listener, error) {
	ln, err := sockfile.Listen(path, 0o600)
	if err != nil {
		return nil, fmt.Errorf("admin socket: %w", err)
	}
	return ln, nil
}

// Serve serves the admin API on ln (from Listen) until ctx ends, then
// closes it (the socket file goes unless a successor has made its own).
func Serve(ctx context.Context, ln net.Listener, table *usage.Table, log *slog.Logger) error {
	return ServeRoles(ctx, ln, table, nil, log)
}

// ServeRoles is Serve that also lists the role sessions roles returns
// (nil: none).
func ServeRoles(ctx context.Context, ln net.Listener, table *usage.Table, roles func() []RoleSession, log *slog.Logger) error {
	path := ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+UsagePath, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(table.Snapshot())
	})
	mux.HandleFunc("GET "+RolesPath, func(w http.ResponseWriter, r *http.Request) {
		list := []RoleSession{}
		if roles != nil {
			list = roles()
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(list)
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close() // closes ln, which removes the socket while it is ours
	}()
	log.Info("admin socket serving", "path", path)
	if err := srv.Serve(&rootOnly{Listener: ln, log: log}); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("admin socket: %w", err)
	}
	return nil
}

// rootOnly accepts connections from uid 0 only.
type rootOnly struct {
	net.Listener
	log *slog.Logger
}

func (l *rootOnly) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		uid, err := peerUID(c)
		if err == nil && uid == 0 {
			return c, nil
		}
		l.log.Warn("admin socket: refused a connection that is not root's", "uid", uid, "err", err)
		c.Close()
	}
}

// Usage asks the daemon listening on the socket at path for its usage table.
func Usage(ctx context.Context, path string) (usage.Snapshot, error) {
	var s usage.Snapshot
	return s, get(ctx, path, UsagePath, &s)
}

// Roles asks the daemon listening on the socket at path for its role sessions.
func Roles(ctx context.Context, path string) ([]RoleSession, error) {
	var list []RoleSession
	return list, get(ctx, path, RolesPath, &list)
}

// get asks the daemon at the socket path for what it serves at api, into out.
func get(ctx context.Context, path, api string, out any) error {
	client := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", path)
		},
	}, Timeout: 5 * time.Second}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://imdsguard"+api, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("ask the daemon at %s (is imdsguard running, and are you root?): %w", path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("daemon answered %s", resp.Status)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}
