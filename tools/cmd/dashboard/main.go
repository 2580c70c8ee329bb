// Command dashboard writes imdsguard's Grafana dashboard (tools/dashboard)
// to a file: `go generate ./dashboard/` in tools/ writes
// packaging/grafana/imdsguard.json.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/imdsguard/imdsguard/tools/dashboard"
)

func main() {
	out := flag.String("o", "", "the file to write (default: standard output)")
	flag.Parse()
	if err := run(*out); err != nil {
		fmt.Fprintln(os.Stderr, "dashboard:", err)
		os.Exit(1)
	}
}

func run(out string) error {
	b, err := dashboard.JSON()
	if err != nil {
		return err
	}
	if out == "" {
		_, err = os.Stdout.Write(b)
		return err
	}
	if err := os.WriteFile(out, b, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	return nil
}
