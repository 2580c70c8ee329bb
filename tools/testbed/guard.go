package testbed

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// GuardConfig is what a test sets in imdsguard's YAML configuration (the
// whole file in docs/configuration.md); YAML renders it. Fields left zero get
// test-friendly values from StartGuard: a free port, redirect off, key and
// admin socket in the Env's temporary directory.
type GuardConfig struct {
	Port         int    // listen.port
	UpstreamURL  string // upstream.url
	RedirectIPv4 bool   // redirect.ipv4 (kernel rules: only inside a test's namespace)
	RedirectIPv6 bool   // redirect.ipv6
	KeyFile      string // tokens.key_file
	AdminSocket  string // admin.socket
	// AuditSummary is audit.summary_interval; "" is 0s: every request on
	// its own audit line, which is what the tests read.
	AuditSummary string
	Extra        string // more top-level YAML appended verbatim (policy:, forwarded_headers: ...)
	Raw          string // when set, the whole file verbatim; Port must still say where it listens
}

// YAML renders the configuration file.
func (c GuardConfig) YAML() string {
	if c.Raw != "" {
		return c.Raw
	}
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\n")
	fmt.Fprintf(&b, "listen: {port: %d}\n", c.Port)
	fmt.Fprintf(&b, "upstream: {url: %q}\n", c.UpstreamURL)
	fmt.Fprintf(&b, "redirect: {ipv4: %t, ipv6: %t}\n", c.RedirectIPv4, c.RedirectIPv6)
	fmt.Fprintf(&b, "tokens: {key_file: %q}\n", c.KeyFile)
	fmt.Fprintf(&b, "admin: {socket: %q}\n", c.AdminSocket)
	fmt.Fprintf(&b, "audit: {summary_interval: %s}\n", orZero(c.AuditSummary))
	if c.Extra != "" {
		b.WriteString(strings.TrimRight(c.Extra, "\n") + "\n")
	}
	b.WriteString(noMachineRuntimes(c.Extra))
	return b.String()
}

func orZero(d string) string {
	if d == "" {
		return "0s"
	}
	return d
}

// GuardOptions place the daemon.
type GuardOptions struct {
	NS   string   // network namespace to run in; "" = this one
	Args []string // more arguments after `run --config FILE`
	// Bin is the imdsguard executable; "" = bin/imdsguard of the
	// repository. The benchmarks run a second build beside it (an A/B).
	Bin string
	// Env is added to the daemon's environment: FakeSTS.Env() points its
	// STS client at a fake STS.
	Env []string
}

// Guard is a running imdsguard.
type Guard struct {
	*Proc
	Config     GuardConfig
	ConfigPath string
	Addr       string // 127.0.0.1:port
	URL        string // http://127.0.0.1:port
}

// StartGuard writes cfg to a file, starts `bin/imdsguard run --config FILE`
// (or o.Bin's) and waits until its port accepts connections. It is stopped with SIGTERM
// (and reaped) when the test ends; its stderr (JSON log lines) is shown if
// the test failed.
func (e *Env) StartGuard(cfg GuardConfig, o GuardOptions) *Guard {
	e.T.Helper()
	bin := o.Bin
	if bin == "" {
		e.RequireBins("imdsguard")
		bin = e.Bin("imdsguard")
	}
	cfg = e.guardDefaults(cfg)
	path := e.WriteFile(fmt.Sprintf("imdsguard-%d.yaml", cfg.Port), cfg.YAML())
	p := StartProc(e.T, ProcSpec{
		Name: "imdsguard", Path: bin, NS: o.NS,
		Args: append([]string{"run", "--config", path}, o.Args...), Env: o.Env,
	})
	g := &Guard{Proc: p, Config: cfg, ConfigPath: path, Addr: HostPort("127.0.0.1", cfg.Port)}
	g.URL = "http://" + g.Addr
	WaitListening(e.T, p, o.NS, g.Addr)
	return g
}

func (e *Env) guardDefaults(c GuardConfig) GuardConfig {
	if c.Port == 0 {
		c.Port = FreePort(e.T)
	}
	if c.KeyFile == "" {
		c.KeyFile = e.Path(fmt.Sprintf("token-%d.key", c.Port))
	}
	if c.AdminSocket == "" {
		c.AdminSocket = filepath.Join(e.shortDir(), fmt.Sprintf("admin-%d.sock", c.Port))
	}
	return c
}

// shortDir returns a directory with a short path, for Unix sockets (108
// bytes at most; t.TempDir paths carry the test name), removed after the test.
func (e *Env) shortDir() string {
	e.T.Helper()
	dir, err := os.MkdirTemp("", "igt")
	if err != nil {
		e.T.Fatalf("make socket dir: %v", err)
	}
	e.T.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}
