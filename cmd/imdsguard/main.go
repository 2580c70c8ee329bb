// Command imdsguard is a transparent hardening proxy for the instance
// metadata service. See `imdsguard --help` and README.md.
package main

import (
	"os"
)

func main() {
	os.Exit(execute(os.Args[1:], os.Stdout, os.Stderr))
}
