package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/imdsguard/imdsguard/internal/config"
)

// exitError carries the exit code a command wants.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }

// execute runs the command line and returns the process exit code: 0, 1 for
// a failure, 2 for bad usage.
func execute(args []string, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ce *config.Errors
	if errors.As(err, &ce) { // file:line:column lines, as compilers print them
		for _, e := range ce.List {
			fmt.Fprintln(stderr, e)
		}
	} else {
		fmt.Fprintln(stderr, "imdsguard:", err)
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "imdsguard",
		Short: "Transparent hardening proxy for the instance metadata service (IMDS)",
		Long: `imdsguard sits between every process and container on an EC2 or Lightsail
instance and the instance metadata service (169.254.169.254, fd00:ec2::254).

It answers legacy IMDSv1 requests through an IMDSv2 session, so the instance
can require tokens without breaking old software; refuses requests relayed by
another proxy (X-Forwarded-For, Forwarded); decides every request on one
canonical path with a per-user allowlist; mints caller-bound IMDSv2 tokens
itself; and fails closed.

Configuration: /etc/imdsguard/imdsguard.yaml by default; every field has a
safe default, so "imdsguard run" works with no file at all.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd(), newRulesCmd(), newPolicyCmd(), newAuditCmd(), newRolesCmd(), newCheckCmd(), newVersionCmd())
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		return &exitError{code: 2, err: fmt.Errorf("%w (see %s --help)", err, c.CommandPath())}
	})
	return root
}

// usageError is a command-line mistake: exit code 2.
func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// args wraps a cobra argument check so that its failure is a usage error.
func args(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(cmd *cobra.Command, a []string) error {
		if err := check(cmd, a); err != nil {
			return usageError("%v (see %s --help)", err, cmd.CommandPath())
		}
		return nil
	}
}
