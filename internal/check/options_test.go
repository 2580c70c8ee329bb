package check

import (
	"context"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The metadata options: each setting as the direct probes see it, and the
// line the check prints.

var errTimeout = context.DeadlineExceeded

func TestMetadataOptions(t *testing.T) {
	disabled := DirectAnswer{Sent: true, Status: 403, Body: "403 - Forbidden"}
	silent := DirectAnswer{Sent: true, Err: errTimeout, Took: 503 * time.Millisecond}
	for _, c := range []struct {
		name     string
		change   func(*fake)
		check    string
		pass     bool
		verdict  string
		want     []string
		unwanted []string
	}{
		{"endpoint enabled", func(*fake) {}, endpointName, true, "PASS", []string{"IMDS answered a token PUT: 200 in 1ms"}, []string{"fix:"}},
		{"endpoint disabled: 403", func(f *fake) {
			f.options.Token, f.options.Hop, f.options.Tags = disabled, HopProbe{}, DirectAnswer{}
			f.directStatus, f.redirectCode = 403, 502
		}, endpointName, false, "FAIL", []string{"a token PUT got 403 Forbidden", "http-endpoint disabled",
			"callers of imdsguard get meanwhile: answered 502",
			"fix: aws ec2 modify-instance-metadata-options --instance-id INSTANCE_ID --http-endpoint enabled"}, nil},
		{"endpoint silent", func(f *fake) {
			f.options.Token, f.options.Hop, f.options.Tags = silent, HopProbe{}, DirectAnswer{}
			f.redirectCode = 504
		}, endpointName, false, "FAIL", []string{"IMDS did not answer a token PUT (no answer within 500ms)", "callers of imdsguard get meanwhile: answered 504",
			"--http-endpoint enabled"}, nil},
		{"endpoint unreachable", func(f *fake) { f.options.Token = DirectAnswer{Sent: true, Err: errors.New("operation not permitted")} },
			endpointName, false, "FAIL", []string{"cannot reach IMDS directly: operation not permitted", "as root"}, []string{"--http-endpoint enabled"}},
		{"tokens check on a silent endpoint", func(f *fake) { f.directErr = errTimeout }, "IMDS itself rejects IMDSv1 without a token (http-tokens required)",
			false, "FAIL", []string{"IMDS did not answer an IMDSv1 GET within 500ms", "fix: see the endpoint check"}, []string{"as root"}},
		{"tokens check on a disabled endpoint", func(f *fake) { f.directStatus = 403 }, "IMDS itself rejects IMDSv1 without a token (http-tokens required)",
			false, "FAIL", []string{"IMDS answered 403: it refuses every request"}, nil},

		{"ipv6 answers", func(*fake) {}, ipv6Name, true, "PASS", []string{"IMDS answered a token PUT on [fd00:ec2::254]: answered 200"}, nil},
		{"ipv6 disabled", func(f *fake) { f.options.IPv6 = silent }, ipv6Name, true, "WARN",
			[]string{"IMDS does not answer on [fd00:ec2::254] (no answer within 500ms) while IPv4 answers", "from IMDS's IPv4 endpoint",
				"fix: aws ec2 modify-instance-metadata-options --instance-id i-0abc --http-protocol-ipv6 enabled; or set redirect.ipv6: false"}, nil},
		{"ipv6 refused", func(f *fake) {
			f.options.IPv6 = DirectAnswer{Sent: true, Err: &os.SyscallError{Syscall: "connect", Err: errConnRefused}}
		}, ipv6Name, true, "WARN", []string{"(connection refused) while IPv4 answers"}, nil},
		{"ipv6 off in the configuration, IMDS silent on IPv6", func(f *fake) { f.options.IPv6, f.options.IPv6Redirected = silent, false }, ipv6Name, true, "PASS",
			[]string{"redirect.ipv6 is off, and IMDS does not answer on [fd00:ec2::254]"}, []string{"fix:"}},
		{"ipv6 off in the configuration, upstream elsewhere", func(f *fake) { f.options.IPv6, f.options.IPv6Redirected = DirectAnswer{}, false }, ipv6Name, true, "INFO",
			[]string{"not asked: redirect.ipv6 is off and upstream.url is not IMDS's address"}, []string{"fix:"}},
		{"ipv6 off in the configuration, IMDS answers on IPv6", func(f *fake) { f.options.IPv6Redirected = false }, ipv6Name, false, "FAIL",
			[]string{"IPv6 callers reach IMDS directly, past imdsguard", "fix: set redirect.ipv6: true", "--http-protocol-ipv6 disabled"}, nil},
		{"ipv6 and ipv4 silent", func(f *fake) { f.options.Token, f.options.IPv6 = silent, silent }, ipv6Name, true, "INFO", []string{"not judged"}, nil},

		{"tags off", func(*fake) {}, tagsName, true, "INFO", []string{"off: /latest/meta-data/tags/instance answers 404"}, []string{"policy allows"}},
		{"tags off, policy allows", func(f *fake) { f.options.TagsAllowedTo = []string{"rule root", "rule others"} }, tagsName, true, "INFO",
			[]string{"the policy allows tags to rule root, rule others: they get 404 until tags are on", "--instance-metadata-tags enabled"}, nil},
		{"tags on", func(f *fake) {
			f.options.Tags = DirectAnswer{Sent: true, Status: 200, Body: "Environment\nName"}
			f.options.TagsAllowedTo = []string{"rule root"}
		}, tagsName, true, "INFO", []string{"on: IMDS lists 2 tag keys (Environment, Name)", "the policy allows tags to rule root"}, nil},
		{"tags on, policy allows nobody", func(f *fake) { f.options.Tags = DirectAnswer{Sent: true, Status: 200, Body: "Name"} }, tagsName, true, "INFO",
			[]string{"the policy allows tags to nobody"}, nil},

		{"hop limit 1", func(*fake) {}, hopName, true, "PASS", []string{"hop limit 1: ", "dropped 2 packets for their TTL"}, []string{"fix:"}},
		{"hop limit 2, tokens required", func(f *fake) { f.options.Hop = HopProbe{Sent: true, Answered: true} }, hopName, true, "WARN",
			[]string{"hop limit 2 or more", "gets an IMDSv2 token of its own", "fix: aws ec2 modify-instance-metadata-options --instance-id i-0abc --http-tokens required --http-put-response-hop-limit 1"},
			[]string{"tokens optional"}},
		{"hop limit 2, tokens optional", func(f *fake) { f.options.Hop, f.directStatus = HopProbe{Sent: true, Answered: true}, 200 }, hopName, true, "WARN",
			[]string{"with tokens optional", "reads IMDS with IMDSv1 (no hop limit applies to a GET)", "--http-tokens required --http-put-response-hop-limit 1"}, nil},
		{"hop limit unknown", func(f *fake) { f.options.Hop = HopProbe{Sent: true} }, hopName, true, "INFO", []string{"not measured: no answer"}, nil},
		{"hop limit without a token", func(f *fake) { f.options.Hop = HopProbe{} }, hopName, true, "INFO", []string{"not measured: IMDS gave no token"}, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := result(t, with(healthy, c.change), c.check)
			checkResult(t, r, c.pass, append([]string{c.verdict + "  " + c.check}, c.want...), c.unwanted)
		})
	}
}

// TestWarnKeepsOK: WARN and INFO lines leave the report OK (exit 0).
func TestWarnKeepsOK(t *testing.T) {
	f := with(healthy, func(f *fake) {
		f.options.Hop.Answered, f.options.IPv6 = true, DirectAnswer{Sent: true, Err: errTimeout}
	})
	r := Run(context.Background(), f)
	out := r.String()
	if !r.OK() || strings.Count(out, "WARN  ") != 2 || strings.Count(out, "INFO  ") != 1 || strings.Contains(out, "FAIL") {
		t.Fatalf("OK() = %v:\n%s", r.OK(), out)
	}
}

func TestParseMinTTLDrops(t *testing.T) {
	text := "TcpExt: SyncookiesSent TCPMinTTLDrop TCPDeferAcceptDrop\nTcpExt: 0 7 0\nIpExt: InNoRoutes\nIpExt: 3\n"
	if n, err := parseMinTTLDrops(text); err != nil || n != 7 {
		t.Errorf("parseMinTTLDrops = %d, %v; want 7", n, err)
	}
	if _, err := parseMinTTLDrops("IpExt: InNoRoutes\nIpExt: 3\n"); err == nil {
		t.Error("no TcpExt: no error")
	}
}

var errConnRefused = syscall.ECONNREFUSED
