package fakests

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// maxBody bounds a request's body; AssumeRole with 50 tags and a session
// policy stays far below.
const maxBody = 64 << 10

// Options shape a Server. The zero Options accept NodeKey.
type Options struct {
	// Keys are the credentials requests may be signed with; nil: NodeKey.
	Keys []Key
	// MaxSessionDuration is every role's maximum session (IAM's
	// MaxSessionDuration, 1 h to 12 h there); 0: 12 h.
	MaxSessionDuration time.Duration
	// Now is the fake's clock (signature dates, expirations, call times);
	// nil: time.Now.
	Now func() time.Time
}

// Server is the fake STS, an http.Handler. Its pipeline, for a request to
// any path but the control API's (ControlPrefix): read the form, record
// the call, check the signature (verify), the action and AssumeRole's
// parameters, apply the fault that holds for the role (a delay, an
// error), then mint credentials and answer them.
type Server struct {
	now         func() time.Time
	maxDuration time.Duration
	calls       callLog
	faults      faultSet

	mu     sync.Mutex
	keys   map[string]Key // by AccessKeyId
	minted map[string]int // successful calls by role ARN and session name
}

// New returns a Server.
func New(o Options) *Server {
	s := &Server{now: o.Now, maxDuration: o.MaxSessionDuration, minted: map[string]int{}}
	if s.now == nil {
		s.now = time.Now
	}
	if s.maxDuration == 0 {
		s.maxDuration = 12 * time.Hour
	}
	if o.Keys == nil {
		o.Keys = []Key{NodeKey}
	}
	s.SetKeys(o.Keys...)
	return s
}

// SetKeys replaces the credentials requests may be signed with (a node
// whose role credentials rotated, say).
func (s *Server) SetKeys(keys ...Key) {
	m := make(map[string]Key, len(keys))
	for _, k := range keys {
		m[k.AccessKeyID] = k
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys = m
}

// SetFault sets the fault for every role; the zero Fault removes it. A
// role's own fault (SetRoleFault) wins over it.
func (s *Server) SetFault(f Fault) error { return s.SetRoleFault("", f) }

// SetRoleFault sets the fault for calls whose RoleArn is role, or whose
// role's name is role ("" = every role); the zero Fault removes it.
func (s *Server) SetRoleFault(role string, f Fault) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.faults.set(role, f)
	return nil
}

// ClearFaults removes every fault.
func (s *Server) ClearFaults() { s.faults.clear() }

// Calls returns every call received since the start (or ClearCalls), in
// the order received; a call still being answered has no Outcome yet.
func (s *Server) Calls() []Call { return s.calls.snapshot() }

// ClearCalls forgets the calls received so far.
func (s *Server) ClearCalls() { s.calls.clear() }

// ServeHTTP answers the control API under ControlPrefix, and STS on every
// other path, as the pipeline in Server's comment says.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, ControlPrefix) {
		s.serveControl(w, r)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return // the caller went away
	}
	form, _ := url.ParseQuery(string(body))
	in := parseAssumeRole(form)
	c := s.calls.add(s.newCall(r, form, in))
	res := s.answer(r, body, form, in, c.SignerKeyID)
	s.calls.finish(c, res.record)
	switch {
	case res.canceled:
	case res.err != nil:
		writeError(w, c.RequestID, res.err)
	default:
		writeCredentials(w, c.RequestID, in, res.key, res.expiration)
	}
}

// newCall is the record of a request, before it is judged.
func (s *Server) newCall(r *http.Request, form url.Values, in assumeRoleInput) *Call {
	c := &Call{
		Time: s.now(), Action: form.Get("Action"), RoleARN: in.roleARN,
		RoleSessionName: in.session, ExternalID: in.externalID, DurationSeconds: in.durationSeconds,
		Tags: in.tags, TransitiveTagKeys: in.transitive,
	}
	if a, ok := parseAuthorization(r.Header.Get("Authorization")); ok {
		c.SignerKeyID, c.Region = a.keyID, a.region
	}
	return c
}

// result is how a call is answered: credentials, an error, or nothing
// (the caller went away during a delay).
type result struct {
	key        Key
	expiration time.Time
	err        *apiError
	canceled   bool
}

// record writes the outcome into the call's record.
func (res result) record(c *Call) {
	switch {
	case res.canceled:
		c.Outcome = Canceled
	case res.err != nil:
		c.Outcome, c.Status = string(res.err.code), res.err.status
	default:
		c.Outcome, c.Status = OK, http.StatusOK
		c.AccessKeyID, c.Expiration = res.key.AccessKeyID, res.expiration
	}
}

// answer judges a request signed by keyID and decides its answer.
func (s *Server) answer(r *http.Request, body []byte, form url.Values, in assumeRoleInput, keyID string) result {
	if e := s.check(r, body, form, in); e != nil {
		return result{err: e}
	}
	f := s.faults.take(in.roleARN)
	if f.Delay > 0 && !sleep(r.Context(), f.Delay) {
		return result{canceled: true}
	}
	if f.Code != "" {
		return result{err: faultError(f.Code, in.roleARN, keyID)}
	}
	key, exp := s.mint(in)
	return result{key: key, expiration: exp}
}

// check is everything a request must pass before faults: the method, the
// body's size, the signature, the action and AssumeRole's parameters.
func (s *Server) check(r *http.Request, body []byte, form url.Values, in assumeRoleInput) *apiError {
	switch {
	case r.Method != http.MethodPost:
		return sender(http.StatusBadRequest, InvalidAction, "Only POST with a form body is served here, not %s", r.Method)
	case len(body) > maxBody:
		return sender(http.StatusBadRequest, ValidationError, "Request body larger than %d bytes", maxBody)
	}
	s.mu.Lock()
	keys := s.keys
	s.mu.Unlock()
	if e := verify(r, body, keys, s.now()); e != nil {
		return e
	}
	switch action := form.Get("Action"); {
	case action == "":
		return sender(http.StatusBadRequest, MissingAction, "Missing Action")
	case action != "AssumeRole" || form.Get("Version") != "2011-06-15":
		return sender(http.StatusBadRequest, InvalidAction, "Could not find operation %s for version %s", action, form.Get("Version"))
	}
	return in.validate(s.maxDuration)
}

// mint counts one more successful call for in's role and session and
// returns its credentials and when they expire (to the second).
func (s *Server) mint(in assumeRoleInput) (Key, time.Time) {
	exp := s.now().Add(in.duration()).UTC().Truncate(time.Second)
	s.mu.Lock()
	defer s.mu.Unlock()
	k := in.roleARN + "\x00" + in.session
	s.minted[k]++
	return Mint(in.roleARN, in.session, s.minted[k]), exp
}

// sleep waits d or until ctx ends; false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
