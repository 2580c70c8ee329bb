package testbed

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"time"

	"github.com/imdsguard/imdsguard/tools/fakeimds"
)

// FakeIMDS is a running bin/fakeimds.
type FakeIMDS struct {
	*Proc
	Addr       string
	URL        string
	RecordPath string       // "" unless started with record
	client     *http.Client // for Stats; nil: a plain one (this network namespace)
}

// StartFakeIMDS starts bin/fakeimds on a free loopback port, recording every
// request to a file when record is set, and waits until it listens.
func (e *Env) StartFakeIMDS(record bool) *FakeIMDS {
	e.T.Helper()
	e.RequireBins("fakeimds")
	f := &FakeIMDS{Addr: HostPort("127.0.0.1", FreePort(e.T))}
	f.URL = "http://" + f.Addr
	args := []string{"-listen", f.Addr}
	if record {
		f.RecordPath = e.Path("fakeimds-" + f.Addr[len("127.0.0.1:"):] + ".jsonl")
		args = append(args, "-record", f.RecordPath)
	}
	f.Proc = StartProc(e.T, ProcSpec{Name: "fakeimds", Path: e.Bin("fakeimds"), Args: args})
	WaitListening(e.T, f.Proc, "", f.Addr)
	return f
}

// Stats asks the fake for its counts.
func (f *FakeIMDS) Stats() (fakeimds.Stats, error) {
	var s fakeimds.Stats
	c := f.client
	if c == nil {
		c = &http.Client{Timeout: 2 * time.Second}
	}
	resp, err := c.Get(f.URL + fakeimds.StatsPath)
	if err != nil {
		return s, fmt.Errorf("fakeimds stats: %w", err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(&s); err != nil {
		return s, fmt.Errorf("fakeimds stats: decode: %w", err)
	}
	return s, nil
}

// Records returns the requests recorded so far.
func (f *FakeIMDS) Records() ([]fakeimds.Record, error) {
	file, err := os.Open(f.RecordPath)
	if err != nil {
		return nil, fmt.Errorf("fakeimds records: %w", err)
	}
	defer file.Close()
	var recs []fakeimds.Record
	sc := bufio.NewScanner(file)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		var r fakeimds.Record
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return nil, fmt.Errorf("fakeimds records: %q: %w", sc.Text(), err)
		}
		recs = append(recs, r)
	}
	return recs, sc.Err()
}

// StartReverseProxy serves a plain httputil.ReverseProxy to upstream (a
// base URL) on a free loopback port, in this process, until the test ends,
// and returns its base URL: the reverse proxy a user would put in front of
// IMDS without thinking (it adds X-Forwarded-For, which imdsguard must
// never send).
func (e *Env) StartReverseProxy(upstream string) string {
	e.T.Helper()
	u, err := url.Parse(upstream)
	if err != nil || u.Host == "" {
		e.T.Fatalf("reverse proxy to %q: want a base URL (%v)", upstream, err)
	}
	srv := httptest.NewServer(httputil.NewSingleHostReverseProxy(u))
	e.T.Cleanup(srv.Close)
	return srv.URL
}
