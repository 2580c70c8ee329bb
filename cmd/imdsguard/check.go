package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/imdsguard/imdsguard/internal/check"
	"github.com/imdsguard/imdsguard/internal/config"
	"github.com/imdsguard/imdsguard/internal/imds"
	"github.com/imdsguard/imdsguard/internal/redirect"
	"github.com/imdsguard/imdsguard/internal/runtime/containerd"
	"github.com/imdsguard/imdsguard/internal/runtime/cri"
	"github.com/imdsguard/imdsguard/internal/runtime/docker"
	"github.com/imdsguard/imdsguard/internal/token"
	"github.com/imdsguard/imdsguard/internal/workload"
	"github.com/imdsguard/imdsguard/policy"
)

func newCheckCmd() *cobra.Command {
	var path, metadata, root string
	var ready, offline bool
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Verify that enforcement is in effect on this instance (exit 0 only when it is)",
		Long: `Verify on this instance, one line each, PASS or FAIL with the fix:

  1. the redirect rules are installed (IPv4 and IPv6), each jump first in
     its chain or below rules that provably cannot touch metadata traffic;
  2. the landing addresses are on lo, per family (where container
     metadata traffic is DNATed to);
  3. the container path is in place (the PREROUTING DNAT, the landing
     addresses, the INPUT and FORWARD rules): it says how many container
     connections the PREROUTING rules counted, names the container
     interfaces and their kind (bridge, veth, address-less, bridge port)
     and which container network they look like (Docker bridge, CNI bridge
     plugin, AWS VPC CNI, Calico, Cilium), and fails when Cilium routes pod
     traffic with eBPF host routing (past netfilter, so past imdsguard);
  4. each container runtime of runtimes: answers (a version call, through
     the client the daemon names containers with); a runtime whose socket
     is absent is not on this node, but when none answers while the
     interfaces show a container network, pods cannot be named by
     containers:/pods: selectors, and that fails;
  5. imdsguard answers on its port;
  6. imdsguard answers a token OPTIONS sent to the metadata address of
     each redirected family through the redirect (it answers OPTIONS
     itself: IMDS is not asked);
  7. IMDS itself rejects an unauthenticated IMDSv1 GET with 401, i.e. the
     instance is set to http-tokens required (this probe goes straight to
     IMDS, past the redirect, with the daemon's firewall mark; if IMDS answers
     200, the fix is the aws CLI command that requires tokens);
  8. an IMDSv1 GET through the redirect is served;
  9. IMDS's endpoint is enabled (http-endpoint): IMDS answers a token
     PUT. FAIL when it answers 403 (what IMDS answers with the endpoint
     disabled, per AWS's troubleshooting guide) or nothing within 500 ms,
     saying what callers of imdsguard get meanwhile (its answer to 8);
 10. with redirect.ipv6 on, IMDS answers on [fd00:ec2::254] too
     (http-protocol-ipv6): WARN when it does not while IPv4 answers, since
     imdsguard then serves IPv6 callers from IMDS's IPv4 endpoint;
 11. INFO: tags in instance metadata on or off
     (/latest/meta-data/tags/instance answers the keys, or 404), and
     which policy rules allow tags;
 12. IMDS's token answers have hop limit 1
     (http-put-response-hop-limit): a token PUT on a socket that drops
     packets with an IP TTL below 2 (IP_MINTTL / IPV6_MINHOPCOUNT) gets no
     answer, the kernel counting the drop (TcpExt TCPMinTTLDrop). WARN
     when the answer arrives (hop limit 2 or more): a container whose
     traffic gets past the redirect then gets IMDS tokens of its own, and
     with tokens optional needs none.

Checks 7 and 9 to 12 ask IMDS itself, past the redirect, each request
bounded by 500 ms. What is documented and what is assumed of IMDS in each
setting is in the README (section "imdsguard check").

WARN and INFO lines leave the exit status 0.

--offline checks an image instead (the AMI bake: Packer, EC2 Image
Builder's validate phase), with no network, no IMDS, no rules and no
running systemd: the binary runs (its version), the configuration file
loads and validates, imdsguard.service and imdsguard.socket are installed
and enabled (read from the enablement symlinks under
/etc/systemd/system/*.wants, as a chroot has them) and not masked, and
the state: the token key's directory (made by systemd at the first start
when absent), no token key in the image (WARN: every instance would share
it), the tmpfiles.d entry. --root DIR checks an image mounted at DIR.

--ready runs only 1, 2 and 6: "this node's imdsguard is enforcing and
serving". It asks neither IMDS (an instance not yet at http-tokens
required is ready) nor a runtime, finishes within 3 s, prints one line
when ready and the three results when not: the readiness and liveness
probe of the DaemonSet (packaging/kubernetes/daemonset.yaml).

Run it as root (reading the rules and the marked probe need CAP_NET_ADMIN).
Exit status: 0 when every check passes, 1 otherwise.`,
		Example: `  sudo imdsguard check
  imdsguard check --offline                                      # in the image build
  imdsguard check --ready --config /etc/imdsguard/imdsguard.yaml   # a probe`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if offline {
				return runOffline(cmd.OutOrStdout(), root, path, !cmd.Flags().Changed("config"))
			}
			cfg, err := config.Load(path, !cmd.Flags().Changed("config"))
			if err != nil {
				return err
			}
			if ready {
				return runReady(cmd.Context(), cmd.OutOrStdout(), systemProbes(cfg, metadata))
			}
			probes := systemProbes(cfg, metadata)
			rts, closeRuntimes := runtimeClients(cfg.Runtimes)
			defer closeRuntimes()
			probes.RuntimeClients = rts
			report := check.Run(cmd.Context(), probes)
			fmt.Fprint(cmd.OutOrStdout(), report)
			if !report.OK() {
				return &exitError{code: 1, err: fmt.Errorf("enforcement is not (fully) in effect: see the FAIL lines")}
			}
			fmt.Fprintln(cmd.OutOrStdout(), "enforcement is in effect")
			return nil
		},
	}
	cmd.Flags().StringVar(&path, "config", config.DefaultPath, "configuration file")
	cmd.Flags().StringVar(&metadata, "metadata-url", "http://169.254.169.254", "the metadata address callers use (probed through the redirect)")
	cmd.Flags().BoolVar(&offline, "offline", false, "check an image, not a running instance: binary, configuration, units installed and enabled, state (no network, no IMDS, no systemd)")
	cmd.Flags().StringVar(&root, "root", "/", "with --offline: the image's root directory (the configuration path is read inside it)")
	cmd.Flags().BoolVar(&ready, "ready", false, "only the rules, the landing addresses and a token OPTIONS through the redirect: a readiness/liveness probe (one line when ready)")
	cmd.MarkFlagsMutuallyExclusive("offline", "ready")
	return cmd
}

// runReady prints check.Ready's one line and returns nil, or prints its
// results and returns exit status 1.
func runReady(ctx context.Context, out io.Writer, p check.Probes) error {
	start := time.Now()
	report := check.Ready(ctx, p)
	if report.OK() {
		fmt.Fprintf(out, "ready (checked in %s): %s\n", time.Since(start).Round(time.Millisecond), report.Line())
		return nil
	}
	fmt.Fprint(out, report)
	return &exitError{code: 1, err: errors.New("not ready: see the FAIL lines")}
}

func systemProbes(cfg *config.Config, metadata string) check.System {
	s := check.System{
		ProxyAddr:     net.JoinHostPort("127.0.0.1", strconv.Itoa(cfg.Listen.Port)),
		Upstream:      cfg.Upstream.URL,
		Metadata:      metadata,
		Mark:          redirect.Mark,
		TagsAllowedTo: tagsAllowedTo(cfg.Policy),
	}
	if cfg.Redirect.IPv4 {
		s.Families = append(s.Families, check.Family{Name: "IPv4", Host: imds.Host})
	}
	if cfg.Redirect.IPv6 {
		s.Families = append(s.Families, check.Family{Name: "IPv6", Host: imds.HostIPv6})
	}
	if redirecting(cfg) {
		r, err := newRules(cfg, slog.New(slog.DiscardHandler))
		if err == nil {
			s.RulesFor = r
		} else {
			s.RulesErr = err
		}
	}
	return s
}

// runOffline runs check.Offline on the image at root and prints it;
// exit status 1 unless every check passes.
func runOffline(out io.Writer, root, path string, missingOK bool) error {
	o := check.Offline{Root: root, Version: version, Config: path, KeyFile: token.DefaultConfig().KeyFile}
	full := filepath.Join(root, path)
	if _, err := os.Stat(full); errors.Is(err, fs.ErrNotExist) && missingOK {
		o.ConfigDefault = true
	}
	if cfg, err := config.Load(full, missingOK); err != nil {
		o.ConfigErr = err
	} else {
		o.KeyFile = cfg.Tokens.KeyFile
	}
	report := o.Run()
	fmt.Fprint(out, report)
	if !report.OK() {
		return &exitError{code: 1, err: errors.New("the image is not ready: see the FAIL lines")}
	}
	fmt.Fprintln(out, "the image is ready: imdsguard starts enforcing at boot")
	return nil
}

// tagsAllowedTo names who policy lets read the instance's tags: each rule
// that, applying, allows /meta-data/tags/instance or a tag under it, and
// the callers no rule matches when the default is allow.
func tagsAllowedTo(c policy.Config) []string {
	var who []string
	for _, rc := range c.Rules {
		rc.Match, rc.Role = &policy.MatchConfig{}, ""
		p, _, err := policy.Compile(policy.Config{Rules: []policy.RuleConfig{rc}}, nil)
		if err != nil {
			continue
		}
		for _, path := range []string{"/meta-data/tags/instance", "/meta-data/tags/instance/Name"} {
			if p.Decide(policy.Request{Caller: policy.Caller{UIDKnown: true}, Path: path}).Allow {
				who = append(who, "rule "+rc.Name)
				break
			}
		}
	}
	if c.Default == "allow" {
		who = append(who, "callers no rule matches (default: allow)")
	}
	return who
}

// versioner is a runtime client as check uses it.
type versioner interface {
	Version(context.Context) (string, error)
	Close() error
}

// runtimeClients makes, for each runtime whose socket is configured, the
// client the daemon uses (see newRuntimes), with its version call; close
// releases them. None connects yet.
func runtimeClients(cfg workload.Config) (rts []check.RuntimeClient, closeAll func()) {
	var open []versioner
	for _, r := range []struct {
		name, key, socket string
		client            func(socket string) (versioner, error)
	}{
		{workload.Docker, "docker", cfg.Docker, func(s string) (versioner, error) { return docker.New(s) }},
		{workload.Containerd, "containerd", cfg.Containerd, func(s string) (versioner, error) { return containerd.New(s) }},
		{workload.CRIO, "crio", cfg.CRIO, func(s string) (versioner, error) { return cri.New(workload.CRIO, s) }},
	} {
		if r.socket == "" {
			continue
		}
		rc := check.RuntimeClient{Name: r.name, Key: r.key, Socket: r.socket}
		c, err := r.client(r.socket)
		if err != nil {
			rc.Version = func(context.Context) (string, error) { return "", err }
		} else {
			rc.Version = c.Version
			open = append(open, c)
		}
		rts = append(rts, rc)
	}
	return rts, func() {
		for _, c := range open {
			c.Close()
		}
	}
}
