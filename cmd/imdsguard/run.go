package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/imdsguard/imdsguard/internal/config"
)

type runFlags struct {
	config    string
	logLevel  string
	logFormat string
}

func newRunCmd() *cobra.Command {
	var f runFlags
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Serve the metadata proxy",
		Long: `Serve the metadata proxy on listen.port (127.0.0.1 and [::1]).

Callers reach it through the redirect rules, as an endpoint
(AWS_EC2_METADATA_SERVICE_ENDPOINT=http://127.0.0.1:8989), or as an HTTP
proxy for 169.254.169.254. It answers IMDSv1 requests through one IMDSv2
session with the real IMDS, mints caller-bound IMDSv2 tokens itself, and
decides every request with the policy.

Reloads: SIGHUP, or a change of the configuration file's content (looked
at every 2 s, so that an edited Kubernetes ConfigMap applies by itself),
reloads the policy; an invalid file is refused, logged, and the policy in
force stays. Other sections need a restart.

Restarts refuse nothing: a second "imdsguard run" started beside this one
takes its listening sockets over (the handover socket in the admin
socket's directory) and, once this one lets go, the rules; this one stops
accepting, finishes what it holds and waits to be stopped. Under systemd,
imdsguard.socket holds the sockets across restarts.

Signals: SIGTERM and SIGINT stop gracefully (the rules stay: fail closed).
Logs and audit events are JSON lines on stderr.`,
		Example: `  imdsguard run
  imdsguard run --config /etc/imdsguard/imdsguard.yaml --log-level debug`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd.ErrOrStderr(), f.logLevel, f.logFormat)
			if err != nil {
				return usageError("%v", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			return run(ctx, f.config, cmd.Flags().Changed("config"), log)
		},
	}
	cmd.Flags().StringVar(&f.config, "config", config.DefaultPath, "configuration file (absent default file: built-in defaults)")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	cmd.Flags().StringVar(&f.logFormat, "log-format", "json", "json or text")
	return cmd
}

// run loads the configuration and serves until ctx ends. SIGHUP is caught
// from the first moment (its default action would kill the daemon: a
// `systemctl reload` right after a start must not), and the file's digest
// is taken before it is read, so that no change is missed in between.
func run(ctx context.Context, path string, explicit bool, log *slog.Logger) error {
	hup := hangups(ctx)
	digest := fileDigest(path)
	cfg, err := config.Load(path, !explicit)
	if err != nil {
		return err
	}
	d, err := newDaemon(cfg, log)
	if err != nil {
		return err
	}
	d.hup, d.cfgDigest = hup, digest
	return d.serve(ctx)
}

func newLogger(w interface{ Write([]byte) (int, error) }, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: l}
	switch strings.ToLower(format) {
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want json or text", format)
}

// hangups delivers SIGHUP until ctx ends, then is closed.
func hangups(ctx context.Context) <-chan os.Signal {
	c := make(chan os.Signal, 1)
	signal.Notify(c, syscall.SIGHUP)
	go func() {
		<-ctx.Done()
		signal.Stop(c) // no send to c after Stop returns
		close(c)
	}()
	return c
}
