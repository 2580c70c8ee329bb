package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// version is set by the build: -ldflags "-X main.version=...".
var version = "dev"

func newVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version and build information",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			fmt.Fprintf(cmd.OutOrStdout(), "imdsguard %s\n", version)
			fmt.Fprintf(cmd.OutOrStdout(), "go: %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
			if bi, ok := debug.ReadBuildInfo(); ok {
				for _, dep := range bi.Deps {
					switch dep.Path {
					case "github.com/elazarl/goproxy", "github.com/coreos/go-iptables", "github.com/vishvananda/netlink":
						fmt.Fprintf(cmd.OutOrStdout(), "%s %s\n", dep.Path, dep.Version)
					}
				}
			}
			return nil
		},
	}
}
