package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// options are the command's flags, checked.
type options struct {
	Rounds   int
	Duration time.Duration // of each measured wrk run
	Warmup   time.Duration // per target at c=16 before the rounds; 0: none
	Conc     []int         // wrk connections, one run each, in this order
	Path     string        // the metadata path every request asks
	Out      string        // the report
	GuardA   string        // imdsguard binary A
	GuardB   string        // imdsguard binary B; "": no A/B
	Redirect bool          // also measure imdsguard through its nat rules
	Args     []string      // the command line as given, for the report
	Root     string        // the repository
}

// The defaults of -rounds and -duration: a report made with less says so.
const (
	defaultRounds   = 3
	defaultDuration = 4 * time.Second
)

// maxConc bounds -concurrency: what the open-files limit is raised for.
const maxConc = 5000

// parseOptions reads args (without the program name); root is the
// repository, which the default paths are in.
func parseOptions(args []string, root string, stderr io.Writer) (options, error) {
	o := options{Args: args, Root: root}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `usage: bin/bench [flags]   (as root; sudo make bench runs it)

Measures imdsguard against nginx, plain and with proxy_cache, in front of
fakeimds, all on the loopback of one network namespace made for the run,
with wrk at each concurrency, in interleaved rounds; writes the report
(the tables, and the issue's envelope as ratios within the run) to -out.
Performance is reported, never asserted: it exits 1 only when a request
failed or a correctness check did not hold, after writing the report.

  bin/bench -rounds 1 -duration 2s -out /tmp/quick.md        a quick look
  bin/bench -imdsguard-b /tmp/old/imdsguard                  an A/B of two builds

flags:
`)
		fs.PrintDefaults()
	}
	fs.IntVar(&o.Rounds, "rounds", defaultRounds, "rounds; each figure is the median over them")
	fs.DurationVar(&o.Duration, "duration", defaultDuration, "length of each measured run (whole seconds: wrk's -d)")
	fs.DurationVar(&o.Warmup, "warmup", 2*time.Second, "warm-up of each target at c=16 before the rounds (whole seconds; 0: none)")
	conc := fs.String("concurrency", "1,16,256,1000", "wrk connections, comma-separated: one run each per target and round")
	fs.StringVar(&o.Path, "path", "/latest/meta-data/instance-id", "metadata path requested")
	fs.StringVar(&o.Out, "out", filepath.Join(root, "docs", "BENCHMARKS.md"), "report to write")
	fs.StringVar(&o.GuardA, "imdsguard", filepath.Join(root, "bin", "imdsguard"), "imdsguard binary measured")
	fs.StringVar(&o.GuardB, "imdsguard-b", "", "a second imdsguard binary measured in the same run (A/B)")
	fs.BoolVar(&o.Redirect, "redirect", false, "also measure imdsguard reached through its nat rules from a client namespace")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	var err error
	if o.Conc, err = parseConcurrency(*conc); err != nil {
		return o, err
	}
	return o, o.check()
}

// parseConcurrency reads "1,16,256,1000".
func parseConcurrency(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 || n > maxConc {
			return nil, fmt.Errorf("-concurrency %q: %q is not a whole number from 1 to %d", s, f, maxConc)
		}
		if slices.Contains(out, n) {
			return nil, fmt.Errorf("-concurrency %q: %d twice", s, n)
		}
		out = append(out, n)
	}
	return out, nil
}

func (o options) check() error {
	var errs []error
	if o.Rounds < 1 {
		errs = append(errs, fmt.Errorf("-rounds %d: want at least 1", o.Rounds))
	}
	if o.Duration < time.Second || o.Duration%time.Second != 0 {
		errs = append(errs, fmt.Errorf("-duration %v: want whole seconds, at least 1s (wrk's -d)", o.Duration))
	}
	if o.Warmup < 0 || o.Warmup%time.Second != 0 {
		errs = append(errs, fmt.Errorf("-warmup %v: want whole seconds, or 0", o.Warmup))
	}
	if !strings.HasPrefix(o.Path, "/latest/") || strings.ContainsAny(o.Path, " \t\r\n") {
		errs = append(errs, fmt.Errorf("-path %q: want a path below /latest/", o.Path))
	}
	if o.GuardA == "" || o.Out == "" {
		errs = append(errs, errors.New("-imdsguard and -out must not be empty"))
	}
	return errors.Join(errs...)
}

// reduced reports whether the run had fewer rounds or shorter runs than
// the defaults.
func (o options) reduced() bool { return o.Rounds < defaultRounds || o.Duration < defaultDuration }

// shown is path as the report shows it: relative to the repository when
// inside it.
func (o options) shown(path string) string {
	rel, err := filepath.Rel(o.Root, path)
	if err != nil || !filepath.IsLocal(rel) {
		return path
	}
	return rel
}

// commandLine is the command as run, for the report.
func (o options) commandLine() string {
	parts := []string{"bin/bench"}
	for _, a := range o.Args {
		parts = append(parts, shellQuote(a))
	}
	return strings.Join(parts, " ")
}

// shellQuote quotes s for a POSIX shell when it needs it.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_=.,/:+@") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
