package main

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/imdsguard/imdsguard/internal/check"
	"github.com/imdsguard/imdsguard/internal/config"
	"github.com/imdsguard/imdsguard/internal/redirect"
)

func newCheckCmd() *cobra.Command {
	var path, metadata string
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Verify that enforcement is in effect on this instance (exit 0 only when it is)",
		Long: `Verify on this instance, one line each, PASS or FAIL with the fix:

  1. the redirect rules are installed (IPv4 and IPv6), each jump first in
     its chain;
  2. the container path is in place (the PREROUTING DNAT, the landing
     addresses on lo, the INPUT and FORWARD rules): it says how many
     container connections the PREROUTING rules counted, names the container
     interfaces and their kind (bridge, veth, address-less, bridge port),
     and fails when Cilium routes pod traffic with eBPF host routing (past
     netfilter, so past imdsguard);
  3. imdsguard answers on its port;
  4. IMDS itself rejects an unauthenticated IMDSv1 GET with 401, i.e. the
     instance is set to http-tokens required (this probe goes straight to
     IMDS, past the redirect, with the daemon's firewall mark; if IMDS answers
     200, the fix is the aws CLI command that requires tokens);
  5. an IMDSv1 GET through the redirect is served.

Run it as root (reading the rules and the marked probe need CAP_NET_ADMIN).
Exit status: 0 when every check passes, 1 otherwise.`,
		Example: `  sudo imdsguard check`,
		Args:    args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path, !cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			report := check.Run(cmd.Context(), systemProbes(cfg, metadata))
			fmt.Fprint(cmd.OutOrStdout(), report)
			if !report.OK() {
				return &exitError{code: 1, err: fmt.Errorf("enforcement is not (fully) in effect: see the FAIL lines")}
			}
			fmt.Fprintln(cmd.OutOrStdout(), "enforcement is in effect")
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", config.DefaultPath, "configuration file")
	cmd.Flags().StringVar(&metadata, "metadata-url", "http://169.254.169.254", "the metadata address callers use (probed through the redirect)")
	return cmd
}

func systemProbes(cfg *config.Config, metadata string) check.System {
	s := check.System{
		ProxyAddr: net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Listen.Port)),
		Upstream:  cfg.Upstream.URL,
		Metadata:  metadata,
		Mark:      redirect.Mark,
	}
	if redirecting(cfg) {
		r, err := newRules(cfg, slog.New(slog.DiscardHandler))
		if err == nil {
			s.RulesFor = r
		} else {
			s.RulesErr = err
		}
	}
	return s
}
