package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/imdsguard/imdsguard/internal/config"
	"github.com/imdsguard/imdsguard/policy"
)

func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Validate and explain the configuration's policy",
	}
	cmd.AddCommand(newPolicyCheckCmd(), newPolicyExplainCmd())
	return cmd
}

func newPolicyCheckCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a configuration file",
		Long: `Validate a configuration file the way "imdsguard run" reads it: the version
field, no unknown fields, every value checked. Every problem is printed as
FILE:LINE:COLUMN: FIELD: what is wrong. Warnings (a user name that does not
resolve on this host, a rule that can never apply) are printed too but do not
fail the check.

Exit status: 0 valid, 1 invalid, 2 usage.`,
		Example: `  imdsguard policy check /etc/imdsguard/imdsguard.yaml`,
		Args:    args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(args[0], false)
			if err != nil {
				return err
			}
			pol, warns, err := policy.Compile(cfg.Policy, policy.SystemNames{})
			if err != nil {
				return err
			}
			for _, w := range config.Warn(cfg, "policy", warns) {
				fmt.Fprintln(cmd.ErrOrStderr(), "warning:", w)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%d rules, mode %s, default %s)\n",
				args[0], len(cfg.Policy.Rules), pol.Mode(), orDefault(cfg.Policy.Default, "deny"))
			return nil
		},
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
