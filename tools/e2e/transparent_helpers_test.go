package e2e

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// The transparent-mode tests run imdsguard the way it runs on an instance:
// its rules in a "host" namespace, IMDS (AEMM, tokens required) behind a
// routed link, clients with their built-in endpoints in the host and in a
// "container" (testbed.Host). They need root; everything they do stays
// inside the namespaces they make.

// transparent builds a Host and starts imdsguard in it with c.
func transparent(t *testing.T, o testbed.HostOptions, c testbed.HostGuardConfig) (*testbed.Env, *testbed.Host, *testbed.Guard) {
	t.Helper()
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard", "imdsclient")
	h := e.NewHost(o)
	return e, h, h.StartGuard(c)
}

// audit is one audit event of imdsguard, flattened.
type audit struct {
	Class, Source, User, Comm, Interface string
	UID, PID                             int
	UIDKnown                             bool
	Method, Path, Version                string
	Decision, Rule, Reason               string
	Status                               int
}

func (a audit) String() string {
	return fmt.Sprintf("%s %s uid=%d user=%q comm=%s pid=%d if=%s | %s %s %s -> %s %d (rule %s)",
		a.Class, a.Source, a.UID, a.User, a.Comm, a.PID, a.Interface, a.Method, a.Path, a.Version, a.Decision, a.Status, a.Rule)
}

// audits returns g's audit events ("msg":"imds request") in order.
func audits(g *testbed.Guard) []audit {
	var out []audit
	for _, ev := range g.Events() {
		if ev["msg"] != "imds request" {
			continue
		}
		a := audit{
			Method: str(ev["method"]), Path: str(ev["path"]), Version: str(ev["version"]),
			Decision: str(ev["decision"]), Rule: str(ev["rule"]), Reason: str(ev["reason"]),
			Status: num(ev["status"]),
		}
		if c, ok := ev["caller"].(map[string]any); ok {
			a.Class, a.Source, a.User, a.Comm, a.Interface = str(c["class"]), str(c["source"]), str(c["user"]), str(c["comm"]), str(c["interface"])
			_, a.UIDKnown = c["uid"]
			a.UID, a.PID = num(c["uid"]), num(c["pid"])
		}
		out = append(out, a)
	}
	return out
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func num(v any) int {
	f, _ := v.(float64)
	return int(f)
}

// eventCount counts g's log lines whose "msg" is msg.
func eventCount(g *testbed.Guard, msg string) int {
	n := 0
	for _, ev := range g.Events() {
		if ev["msg"] == msg {
			n++
		}
	}
	return n
}

// since returns the audit events after the first n.
func since(g *testbed.Guard, n int) []audit {
	all := audits(g)
	if n > len(all) {
		return nil
	}
	return all[n:]
}

// aemmRequest is one request as AEMM logged it ("Received request: &{...}",
// Go's %v of the *http.Request: the remote address sits just before the
// request URI).
type aemmRequest struct {
	Method, URI, Remote, UserAgent string
}

var (
	aemmLine = regexp.MustCompile(`Received request: &\{(\S+) `)
	aemmTail = regexp.MustCompile(` (\S+:\d+) (/\S*) `)
	aemmUA   = regexp.MustCompile(`User-Agent:\[([^\]]*)\]`)
)

// aemmRequests parses the requests an AEMM logged so far.
func aemmRequests(a *testbed.AEMM) []aemmRequest {
	var out []aemmRequest
	for _, line := range strings.Split(a.Stdout()+a.Stderr(), "\n") {
		m := aemmLine.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		r := aemmRequest{Method: m[1]}
		if t := aemmTail.FindAllStringSubmatch(line, -1); t != nil {
			last := t[len(t)-1]
			r.Remote, r.URI = last[1], last[2]
		}
		if ua := aemmUA.FindStringSubmatch(line); ua != nil {
			r.UserAgent = ua[1]
		}
		out = append(out, r)
	}
	return out
}

// bothAEMM are the requests both AEMMs logged.
func bothAEMM(h *testbed.Host) []aemmRequest {
	return append(aemmRequests(h.AEMM4), aemmRequests(h.AEMM6)...)
}

// curlOK runs a curl Cmd and wants 200 with want in the body.
func curlOK(t *testing.T, e *testbed.Env, c testbed.Cmd, want string) {
	t.Helper()
	r := e.Run(c)
	body, st := testbed.CurlStatus(r)
	if r.Err != nil || st != 200 || !strings.Contains(body, want) {
		t.Fatalf("want 200 with %q, got status %d: %v", want, st, r)
	}
}

// curlStatus runs a curl Cmd and wants the status (0: nothing answered).
func curlStatus(t *testing.T, e *testbed.Env, c testbed.Cmd, want int) testbed.Result {
	t.Helper()
	r := e.Run(c)
	if _, st := testbed.CurlStatus(r); st != want {
		t.Fatalf("want HTTP %d, got %d: %v", want, st, r)
	}
	return r
}

// metadataPath is what the clients below ask for.
const instanceIDPath = "/latest/meta-data/instance-id"

// rawGet sends a plain IMDSv1 GET for the instance id from ns to the IMDS
// address of IP version v (through whatever the rules do with it).
func rawGet(ns string, v int) (*testbed.RawResponse, error) {
	return testbed.RawRequestIn(ns, testbed.IMDSAddr(v), "GET", instanceIDPath, nil)
}

// servedByGuard reports whether a plain v1 GET from ns got the instance id:
// only imdsguard answers v1 with 200 (AEMM says 401).
func servedByGuard(ns string, v int) bool {
	r, err := rawGet(ns, v)
	return err == nil && r.Status == 200 && string(r.Body) == testbed.AEMMInstanceID
}

// refusedIn dials addr from ns and wants "connection refused", returning
// how long the refusal took.
func refusedIn(t *testing.T, ns, addr string) time.Duration {
	t.Helper()
	start := time.Now()
	err := testbed.DialIn(ns, addr, 3*time.Second)
	took := time.Since(start)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("dial %s from %s: %v after %v, want connection refused", addr, ns, err, took)
	}
	return took
}

// unansweredIn dials addr from ns and wants no answer at all within wait
// (a timeout: neither a connection nor a reset).
func unansweredIn(t *testing.T, ns, addr string, wait time.Duration) {
	t.Helper()
	err := testbed.DialIn(ns, addr, wait)
	if !errors.Is(err, os.ErrDeadlineExceeded) && !isTimeout(err) {
		t.Fatalf("dial %s from %s: %v, want a timeout (the port must not answer)", addr, ns, err)
	}
}

func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.As(err, &te) && te.Timeout()
}

// rulesStatusOK runs `imdsguard rules status` for g's configuration and
// reports whether it exited 0.
func rulesStatusOK(e *testbed.Env, h *testbed.Host, g *testbed.Guard) (bool, testbed.Result) {
	r := e.Run(h.Rules(g, "status"))
	return r.Err == nil, r
}
