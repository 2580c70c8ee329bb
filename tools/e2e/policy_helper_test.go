package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// The policy tests need metadata clients that are processes of their own:
// the daemon tells callers apart by the process and user that own the
// socket, so raw requests sent from the test process itself would all be
// root's. The helper is this test binary, run again (as another user, in a
// namespace, through testbed.Cmd) with -test.run selecting
// TestPolicyHelperProcess and the job in the environment; it prints one
// JSON document (helperOutput) and exits.
const (
	helperModeEnv = "IMDSGUARD_E2E_HELPER"     // the mode: requests, hammer, setuid
	helperJobEnv  = "IMDSGUARD_E2E_HELPER_JOB" // the job, JSON
	tokenHeader   = "X-aws-ec2-metadata-token"
)

// helperRequest is one raw request of a helper.
type helperRequest struct {
	Addr    string   `json:"addr"`
	Method  string   `json:"method"`
	Target  string   `json:"target"`
	Headers []string `json:"headers,omitempty"`
	// UseToken adds "X-aws-ec2-metadata-token: T", T the body of the last
	// token PUT that got 200 in this helper (an IMDSv2 request).
	UseToken bool `json:"use_token,omitempty"`
	// Token adds this token instead (a token minted for someone else).
	Token string `json:"token,omitempty"`
	// Bind is the local address of the socket ("" = the one routing picks).
	Bind string `json:"bind,omitempty"`
}

func (r helperRequest) String() string {
	v := "v1"
	if r.UseToken || r.Token != "" {
		v = "v2"
	}
	if r.Method == "PUT" {
		v = "token"
	}
	if r.Bind != "" {
		return fmt.Sprintf("%s %s (%s) to %s from %s", r.Method, r.Target, v, r.Addr, r.Bind)
	}
	return fmt.Sprintf("%s %s (%s) to %s", r.Method, r.Target, v, r.Addr)
}

// helperResult is what one request got.
type helperResult struct {
	Req        helperRequest `json:"req"`
	Status     int           `json:"status"`
	StatusLine string        `json:"status_line"`
	Header     http.Header   `json:"header,omitempty"`
	Body       []byte        `json:"body,omitempty"`
	Err        string        `json:"err,omitempty"`
	Start      int64         `json:"start"` // unix nanoseconds, before connecting
	End        int64         `json:"end"`   // unix nanoseconds, after the answer
}

// helperJob says what a helper does.
type helperJob struct {
	Requests []helperRequest `json:"requests"` // requests: each once, in order; hammer: Prelude once, then these in a loop
	Prelude  []helperRequest `json:"prelude,omitempty"`
	// hammer: loop until StopFile exists (checked between rounds) or
	// MaxDuration passed, pausing Pause between requests.
	StopFile    string        `json:"stop_file,omitempty"`
	MaxDuration time.Duration `json:"max_duration,omitempty"`
	Pause       time.Duration `json:"pause,omitempty"`
	// KeepAlive sends every request of the job on one connection (per
	// address), opening a new one only when the daemon closed it.
	KeepAlive bool `json:"keep_alive,omitempty"`
	// setuid: Requests[0] on one socket made as root and used after
	// setuid(UID) ("root-then-user"), or made with euid UID and used after
	// going back to root ("user-then-root").
	Order    string `json:"order,omitempty"`
	UID, GID int
}

// helperOutput is what a helper prints.
type helperOutput struct {
	PID     int            `json:"pid"`
	Comm    string         `json:"comm"`
	Exe     string         `json:"exe"`
	UID     int            `json:"uid"`     // real uid at the start
	GID     int            `json:"gid"`     // real gid at the start
	EUID    int            `json:"euid"`    // effective uid when the request was sent (setuid)
	Groups  []int          `json:"groups"`  // supplementary groups at the start
	Results []helperResult `json:"results"` // in the order sent
	Conns   int            `json:"conns"`   // connections opened (KeepAlive)
	Note    string         `json:"note,omitempty"`
}

// TestPolicyHelperProcess is not a test: it is the helper process described
// above, and returns at once in a normal run.
func TestPolicyHelperProcess(t *testing.T) {
	mode := os.Getenv(helperModeEnv)
	if mode == "" {
		return
	}
	out, err := runHelper(mode, os.Getenv(helperJobEnv))
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		os.Exit(3)
	}
	os.Exit(0)
}

func runHelper(mode, jobJSON string) (*helperOutput, error) {
	var job helperJob
	if err := json.Unmarshal([]byte(jobJSON), &job); err != nil {
		return nil, fmt.Errorf("job: %w", err)
	}
	out := &helperOutput{PID: os.Getpid(), UID: os.Getuid(), GID: os.Getgid(), EUID: os.Geteuid()}
	if b, err := os.ReadFile("/proc/self/comm"); err == nil {
		out.Comm = strings.TrimSpace(string(b))
	}
	out.Exe, _ = os.Executable()
	out.Groups, _ = os.Getgroups()
	ses := &session{keepAlive: job.KeepAlive, conns: map[string]net.Conn{}}
	defer ses.close()
	switch mode {
	case "requests":
		for _, r := range job.Requests {
			out.Results = append(out.Results, ses.do(r))
		}
	case "hammer":
		for _, r := range job.Prelude {
			out.Results = append(out.Results, ses.do(r))
		}
		deadline := time.Now().Add(job.MaxDuration)
		for time.Now().Before(deadline) {
			if _, err := os.Stat(job.StopFile); err == nil {
				break
			}
			for _, r := range job.Requests {
				out.Results = append(out.Results, ses.do(r))
				time.Sleep(job.Pause)
			}
		}
	case "setuid":
		res, note, err := helperSetuid(job)
		if err != nil {
			return nil, err
		}
		out.Results, out.Note, out.EUID = []helperResult{res}, note, os.Geteuid()
	default:
		return nil, fmt.Errorf("unknown mode %q", mode)
	}
	out.Conns = ses.opened
	return out, nil
}

// session is a helper's client state: the token of its last granted
// PUT and, with keepAlive, its open connections.
type session struct {
	tok       string
	keepAlive bool
	conns     map[string]net.Conn
	opened    int
}

// do sends r (on a fresh connection, or the address's open one with
// keepAlive), remembering a granted token.
func (s *session) do(r helperRequest) helperResult {
	h := append([]string(nil), r.Headers...)
	switch {
	case r.Token != "":
		h = append(h, tokenHeader+": "+r.Token)
	case r.UseToken:
		h = append(h, tokenHeader+": "+s.tok)
	}
	res := helperResult{Req: r, Start: time.Now().UnixNano()}
	var resp *testbed.RawResponse
	var err error
	switch {
	case s.keepAlive:
		resp, err = s.onConn(r, h)
	case r.Bind != "":
		d := net.Dialer{Timeout: testbed.RawTimeout, LocalAddr: &net.TCPAddr{IP: net.ParseIP(r.Bind)}}
		var c net.Conn
		if c, err = d.Dial("tcp", r.Addr); err == nil {
			resp, err = testbed.RawRequestOn(c, r.Method, r.Target, h)
			c.Close()
		}
	default:
		resp, err = testbed.RawRequest(r.Addr, r.Method, r.Target, h)
	}
	res.End = time.Now().UnixNano()
	fill(&res, resp, err)
	if err == nil && r.Method == "PUT" && resp.Status == 200 {
		s.tok = string(resp.Body)
	}
	return res
}

// onConn sends on the open connection to r.Addr; when the daemon had
// closed it (nothing came back), once more on a new one.
func (s *session) onConn(r helperRequest, h []string) (*testbed.RawResponse, error) {
	for attempt := 0; ; attempt++ {
		c, ok := s.conns[r.Addr]
		if !ok {
			var err error
			if c, err = net.DialTimeout("tcp", r.Addr, testbed.RawTimeout); err != nil {
				return nil, err
			}
			s.conns[r.Addr] = c
			s.opened++
		}
		resp, err := testbed.RawRequestOn(c, r.Method, r.Target, h)
		closing := err == nil && strings.EqualFold(resp.Header.Get("Connection"), "close")
		if err == nil && !closing {
			return resp, nil
		}
		c.Close()
		delete(s.conns, r.Addr)
		if err == nil || !ok || attempt > 0 {
			return resp, err // closed after this answer, or a fresh connection failed
		}
	}
}

func (s *session) close() {
	for _, c := range s.conns {
		c.Close()
	}
}

func fill(res *helperResult, resp *testbed.RawResponse, err error) {
	if err != nil {
		res.Err = err.Error()
	}
	if resp != nil {
		res.Status, res.StatusLine, res.Header, res.Body = resp.Status, resp.StatusLine, resp.Header, resp.Body
	}
}

// helperSetuid sends job.Requests[0] on a socket whose owner differs from
// the process's user when it is used.
func helperSetuid(job helperJob) (helperResult, string, error) {
	if len(job.Requests) != 1 {
		return helperResult{}, "", errors.New("setuid: one request")
	}
	r := job.Requests[0]
	res := helperResult{Req: r, Start: time.Now().UnixNano()}
	var conn net.Conn
	var note string
	var err error
	switch job.Order {
	case "root-then-user":
		if conn, err = net.DialTimeout("tcp", r.Addr, testbed.RawTimeout); err != nil {
			return res, "", err
		}
		// For good, as a daemon dropping privileges does: groups, gid, uid.
		if err := syscall.Setgroups(nil); err != nil {
			return res, "", fmt.Errorf("setgroups: %w", err)
		}
		if err := syscall.Setgid(job.GID); err != nil {
			return res, "", fmt.Errorf("setgid: %w", err)
		}
		if err := syscall.Setuid(job.UID); err != nil {
			return res, "", fmt.Errorf("setuid: %w", err)
		}
		if os.Getuid() != job.UID || os.Geteuid() != job.UID || syscall.Setuid(0) == nil {
			return res, "", fmt.Errorf("setuid(%d) did not stick: uid %d euid %d", job.UID, os.Getuid(), os.Geteuid())
		}
		note = fmt.Sprintf("socket made as uid 0; request sent as uid %d (root is gone for good)", os.Geteuid())
	case "user-then-root":
		if err := syscall.Setregid(-1, job.GID); err != nil {
			return res, "", fmt.Errorf("setegid: %w", err)
		}
		if err := syscall.Setreuid(-1, job.UID); err != nil {
			return res, "", fmt.Errorf("seteuid: %w", err)
		}
		conn, err = net.DialTimeout("tcp", r.Addr, testbed.RawTimeout)
		madeAs := os.Geteuid()
		if err2 := syscall.Setreuid(-1, 0); err2 != nil {
			return res, "", fmt.Errorf("seteuid back to 0: %w", err2)
		}
		if err2 := syscall.Setregid(-1, 0); err2 != nil {
			return res, "", fmt.Errorf("setegid back to 0: %w", err2)
		}
		if err != nil {
			return res, "", err
		}
		note = fmt.Sprintf("socket made with euid %d; request sent as euid %d", madeAs, os.Geteuid())
	default:
		return res, "", fmt.Errorf("setuid: unknown order %q", job.Order)
	}
	defer conn.Close()
	resp, err := testbed.RawRequestOn(conn, r.Method, r.Target, r.Headers)
	res.End = time.Now().UnixNano()
	fill(&res, resp, err)
	return res, note, nil
}

// helper returns the Cmd that runs job in mode: as root in ns; the caller
// wraps it with asUser for anyone else.
func helper(t *testing.T, e *testbed.Env, ns, mode string, job helperJob) testbed.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("test binary: %v", err)
	}
	b, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	return testbed.Cmd{
		Name: "helper " + mode, Path: exe, NS: ns,
		Args: []string{"-test.run=^TestPolicyHelperProcess$"},
		Env: []string{
			"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			helperModeEnv + "=" + mode, helperJobEnv + "=" + string(b),
		},
		Timeout: 60 * time.Second,
	}
}

// runHelperCmd runs a helper Cmd and decodes what it printed; it fails the
// test when the helper did not finish cleanly.
func runHelperCmd(t *testing.T, e *testbed.Env, c testbed.Cmd) *helperOutput {
	t.Helper()
	r := e.Run(c)
	out, err := decodeHelper(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func decodeHelper(r testbed.Result) (*helperOutput, error) {
	if r.Err != nil {
		return nil, fmt.Errorf("helper failed: %v", r)
	}
	var out helperOutput
	if err := json.Unmarshal([]byte(r.Stdout), &out); err != nil {
		return nil, fmt.Errorf("helper output: %v: %v", err, r)
	}
	return &out, nil
}
