// Command demo is `make demo`: an EC2 instance modelled in three network
// namespaces (tools/testbed.Host, the same host the end-to-end tests build),
// with amazon-ec2-metadata-mock as an IMDS that requires tokens, imdsguard
// and its kernel rules in the "host" namespace, and real clients (curl, boto,
// aws-sdk-go v1 and v2, botocore, the aws CLI, ec2-metadata, ec2metadata)
// left at their built-in endpoint. It tells the story in seven steps and
// shows, after each, the decisions imdsguard logged.
//
// It needs root, the binaries in bin/ and the Debian clients (make demo
// installs and builds them) and runs from the repository. Everything it
// makes is removed when it ends, also on failure or Ctrl-C. No packet goes
// to the metadata addresses outside the namespaces it made.
package main

import (
	"os"
	"os/signal"
	"syscall"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

func main() {
	// Output into a reader that quits early (make demo | head): with SIGPIPE
	// notified, writes to stdout fail with EPIPE, and the demo stops at its
	// next command and cleans up, instead of being killed before it can.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	p := newPrinter(os.Stdout)
	os.Exit(testbed.Main(func(t testbed.TB) { tell(t, p) }))
}
