package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/imdsguard/imdsguard/internal/admin"
	"github.com/imdsguard/imdsguard/internal/config"
)

func newRolesCmd() *cobra.Command {
	var path string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "roles",
		Short: "List the IAM role sessions of this host's workloads and their credentials' expiry (asks the running daemon)",
		Long: `Ask the running daemon, over its root-only admin socket (admin.socket), which
role sessions it holds for workloads of this host (a policy rule's role:, or a
pod's iam.amazonaws.com/role annotation that roles.namespaces allows): the
role, the session name (NAMESPACE.POD for a pod), when the credentials it
holds expire, the containers the runtimes' events showed holding it, and the
last STS error. A session appears once a workload asked for its credentials,
or once its pod was reported by containerd or Docker; it goes when its pod
does, or after two session lifetimes unused.`,
		Example: `  sudo imdsguard roles
  sudo imdsguard roles --json`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path, !cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			list, err := admin.Roles(cmd.Context(), cfg.Admin.Socket)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(list)
			}
			printRoles(cmd.OutOrStdout(), list, time.Now())
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", config.DefaultPath, "configuration file (admin.socket is used)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for machines")
	return cmd
}

func printRoles(w io.Writer, list []admin.RoleSession, now time.Time) {
	if len(list) == 0 {
		fmt.Fprintln(w, "no role sessions: no workload of this host has asked for a role of its own")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ROLE\tSESSION\tEXPIRES\tCONTAINERS\tLAST ERROR")
	for _, s := range list {
		exp := "-"
		if !s.Expiration.IsZero() {
			exp = s.Expiration.UTC().Format(time.RFC3339) + " (in " + s.Expiration.Sub(now).Round(time.Second).String() + ")"
		}
		ids := make([]string, len(s.Containers))
		for i, id := range s.Containers {
			ids[i] = id[:min(12, len(id))]
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.Role, s.Session, exp, orDefault(strings.Join(ids, ","), "-"), orDefault(s.LastError, "-"))
	}
	tw.Flush()
}
