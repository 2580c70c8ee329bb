package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/imdsguard/imdsguard/internal/admin"
	"github.com/imdsguard/imdsguard/internal/config"
	"github.com/imdsguard/imdsguard/internal/usage"
)

func newAuditCmd() *cobra.Command {
	var path string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Show which processes and containers still use IMDSv1 (asks the running daemon)",
		Long: `Ask the running daemon, over its root-only admin socket (admin.socket), which
callers used the metadata service since it started, with their IMDSv1 and
IMDSv2 request counts: the per-process view of the instance's
MetadataNoToken metric. When no caller uses IMDSv1 any more, the instance can
be set to require IMDSv2:

  aws ec2 modify-instance-metadata-options --instance-id ID --http-tokens required

Callers are listed IMDSv1 users first. A caller is a uid, user, process name,
executable and container; PID is the last one seen. WORKLOAD is what the
container's runtime says of it (runtime and name, or pod namespace/name/
container, and image); --json has each as a field.`,
		Example: `  sudo imdsguard audit
  sudo imdsguard audit --json | python3 -m json.tool`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(path, !cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			snap, err := admin.Usage(cmd.Context(), cfg.Admin.Socket)
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(snap)
			}
			printUsage(cmd.OutOrStdout(), snap)
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", config.DefaultPath, "configuration file (admin.socket is used)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON for machines")
	return cmd
}

func printUsage(w io.Writer, s usage.Snapshot) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "UID\tUSER\tPID\tCOMM\tEXE\tCONTAINER\tWORKLOAD\tSOURCE\tIMDSv1\tIMDSv2\tLAST SEEN\tLAST IMDSv1")
	v1 := 0
	for _, r := range s.Callers {
		if r.V1 > 0 {
			v1++
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\n", uidText(r.Key), dash(r.User), r.PID,
			dash(r.Comm), dash(r.Exe), dash(shortID(r.Container)), dash(workloadText(r.Key)), dash(addrText(r.Source)), r.V1, r.V2, stamp(r.LastSeen), stamp(r.LastV1))
	}
	tw.Flush()
	since := s.Since.UTC().Format(time.RFC3339)
	if v1 == 0 {
		fmt.Fprintf(w, "\nNo caller has used IMDSv1 since %s: the instance can require IMDSv2.\n", since)
		return
	}
	fmt.Fprintf(w, "\n%d of %d callers used IMDSv1 since %s. imdsguard upgrades their requests, so the instance can\n"+
		"require IMDSv2 while it runs; without imdsguard these callers would fail. Migrate them to IMDSv2 SDKs.\n", v1, len(s.Callers), since)
}

// workloadText is what the runtime says of a caller's container, in one
// word: "docker:web-1 (registry.example/app:1)", or
// "pod:kube-system/aws-node-x7k2p/aws-node (image)".
func workloadText(k usage.Key) string {
	switch {
	case k.Runtime == "":
		return ""
	case k.PodName != "":
		return "pod:" + k.PodNamespace + "/" + k.PodName + "/" + k.ContainerName + " (" + k.Image + ")"
	}
	return k.Runtime + ":" + k.ContainerName + " (" + k.Image + ")"
}

// shortID is a container id as runtimes print it: 12 characters.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func uidText(k usage.Key) string {
	if !k.UIDKnown {
		return "?"
	}
	return strconv.FormatUint(uint64(k.UID), 10)
}

// addrText is a's text, "" for none.
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
