package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/imdsguard/imdsguard/internal/config"
	"github.com/imdsguard/imdsguard/internal/handover"
	"github.com/imdsguard/imdsguard/internal/redirect"
)

func newRulesCmd() *cobra.Command {
	var path string
	cmd := &cobra.Command{
		Use:   "rules",
		Short: "Manage the kernel redirect rules alone (bake step, uninstall, inspection)",
		Long: `Manage imdsguard's netfilter rules without running the proxy.

The rules send metadata traffic (tcp to 169.254.169.254:80 and
[fd00:ec2::254]:80) from local processes (nat OUTPUT, REDIRECT to loopback)
and from the container interfaces (nat PREROUTING, by default every
interface but lo: DNAT to a landing address the rules put on lo,
169.254.254.169 and fd69:6d64:7367::254) to the proxy's port, skip the
daemon's own marked upstream sockets, keep the proxy port closed to
everything but loopback and redirected metadata traffic, reset forwarded
metadata traffic from any other interface, and reset local metadata traffic
that escaped the redirect (say, after an outside "iptables -t nat -F"). They
live in chains of their own (IMDSGUARD-OUT, -PRE, -IN, -FWD, -FENCE), each
reached by one jump that is kept the first rule of its built-in chain.

With the rules installed and no daemon running, metadata requests are refused
(connection refused): the host fails closed. Needs root (CAP_NET_ADMIN).`,
	}
	cmd.PersistentFlags().StringVar(&path, "config", config.DefaultPath, "configuration file (redirect: and listen.port are used)")
	explicit := func(c *cobra.Command) bool { return c.Flags().Changed("config") }
	cmd.AddCommand(
		&cobra.Command{
			Use:   "install",
			Short: "Install the rules; idempotent (twice is the same as once)",
			Args:  args(cobra.NoArgs),
			RunE: func(c *cobra.Command, _ []string) error {
				return withRules(c, path, explicit(c), func(ctx context.Context, cfg *config.Config, r *redirect.Rules) error {
					// A running daemon keeps the rules (and restores them):
					// installing beside it could only fight it.
					lockPath := filepath.Join(filepath.Dir(cfg.Admin.Socket), handover.LockName)
					lock, err := handover.TryLock(lockPath)
					if err != nil {
						return err
					}
					if lock == nil {
						fmt.Fprintf(c.OutOrStdout(), "imdsguard rules are kept by the running imdsguard (pid %d): nothing to do\n", handover.Holder(lockPath))
						return nil
					}
					defer lock.Release()
					if err := r.Install(ctx); err != nil {
						return err
					}
					fmt.Fprintf(c.OutOrStdout(), "imdsguard rules installed (iptables %s)\n", r.Backend())
					return nil
				})
			},
		},
		&cobra.Command{
			Use:   "remove",
			Short: "Remove exactly what install made, for both address families; leaves no trace",
			Args:  args(cobra.NoArgs),
			RunE: func(c *cobra.Command, _ []string) error {
				return withRules(c, path, explicit(c), func(ctx context.Context, _ *config.Config, r *redirect.Rules) error {
					if err := r.Remove(ctx); err != nil {
						return err
					}
					fmt.Fprintln(c.OutOrStdout(), "imdsguard rules removed: metadata traffic now goes straight to IMDS")
					return nil
				})
			},
		},
		&cobra.Command{
			Use:   "status",
			Short: "Show what is installed and what is missing; exit 1 if anything is missing",
			Args:  args(cobra.NoArgs),
			RunE: func(c *cobra.Command, _ []string) error {
				return withRules(c, path, explicit(c), func(ctx context.Context, _ *config.Config, r *redirect.Rules) error {
					st, err := r.Status(ctx)
					if err != nil {
						return err
					}
					fmt.Fprint(c.OutOrStdout(), st.String())
					if !st.OK() {
						return &exitError{code: 1, err: fmt.Errorf("%d rule pieces missing: run imdsguard rules install", len(st.Missing()))}
					}
					return nil
				})
			},
		},
	)
	return cmd
}

func withRules(c *cobra.Command, path string, explicit bool, f func(context.Context, *config.Config, *redirect.Rules) error) error {
	cfg, err := config.Load(path, !explicit)
	if err != nil {
		return err
	}
	r, err := newRules(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	return f(c.Context(), cfg, r)
}

// newRules makes the Rules of cfg. Their state file (the last fully
// verified picture of the rules, which lets a restart over intact rules
// skip the per-rule checks) lives in the daemon's state directory, beside
// the token key.
func newRules(cfg *config.Config, log *slog.Logger) (*redirect.Rules, error) {
	return redirect.New(redirect.Options{
		Config:    cfg.Redirect,
		Port:      cfg.Listen.Port,
		Mark:      redirect.Mark,
		Log:       log,
		StateFile: filepath.Join(filepath.Dir(cfg.Tokens.KeyFile), "rules.state"),
		// The bake step's `rules install` and the daemon close the local
		// redirect port alike.
		LocalRedirectPort: cfg.Listen.LocalRedirectPort,
	})
}
