package fakeimds

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"
)

// Paths the fake treats specially.
const (
	TokenPath = "/latest/api/token"
	StatsPath = "/_fakeimds/stats"
)

// Server is the fake IMDS, an http.Handler. Its pipeline: record (control
// paths excepted), Server header, stats, token path, method check, token
// check, metadata tree.
type Server struct {
	tokens *minter
	count  counters
	rec    *recorder
	opts   Options
	tree   map[string]string
}

// New returns a Server; when record is not nil every request except those
// to /_fakeimds/ is written to it as a JSON line.
func New(record io.Writer) (*Server, error) {
	return NewWithOptions(record, Options{})
}

// NewWithOptions is New for an instance with the metadata options o.
func NewWithOptions(record io.Writer, o Options) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	m, err := newMinter()
	if err != nil {
		return nil, fmt.Errorf("new fakeimds: %w", err)
	}
	s := &Server{tokens: m, opts: o, tree: tree}
	if o.Tags {
		s.tree = make(map[string]string, len(tree)+4)
		for k, v := range tree {
			s.tree[k] = v
		}
		for k, v := range tagsTree() {
			s.tree[k] = v
		}
		s.tree["/meta-data/"] += "\ntags/"
	}
	if record != nil {
		s.rec = newRecorder(record)
	}
	return s, nil
}

// Stats returns the counts so far.
func (s *Server) Stats() Stats { return s.count.snapshot() }

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.rec != nil && !strings.HasPrefix(r.URL.Path, "/_fakeimds/") {
		if err := s.rec.record(r); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
	}
	w.Header().Set("Server", "EC2ws")
	switch {
	case r.URL.Path == StatsPath:
		s.serveStats(w)
	case s.opts.refuse(w, r):
	case r.URL.Path == TokenPath:
		s.serveToken(w, r)
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		writeError(w, http.StatusMethodNotAllowed)
	default:
		s.serveMetadata(w, r)
	}
}

func (s *Server) serveStats(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(s.Stats())
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPut {
		w.Header().Set("Allow", "OPTIONS, PUT")
		writeError(w, http.StatusMethodNotAllowed)
		return
	}
	s.count.tokenPuts.Add(1)
	ttl, ok := parseTTL(r.Header.Get("X-aws-ec2-metadata-token-ttl-seconds"))
	if !ok {
		writeError(w, http.StatusBadRequest)
		return
	}
	tok := s.tokens.mint(time.Now(), ttl)
	if s.opts.HopLimit > 0 {
		if err := writeTokenTTL(w, s.opts.HopLimit, ttl, tok); err != nil {
			fmt.Fprintln(os.Stderr, "fakeimds:", err)
		}
		return
	}
	h := w.Header()
	h.Set("X-aws-ec2-metadata-token-ttl-seconds", strconv.Itoa(ttl))
	writeText(w, tok)
}

func (s *Server) serveMetadata(w http.ResponseWriter, r *http.Request) {
	s.count.gets.Add(1)
	if !s.tokens.valid(time.Now(), r.Header.Get("X-aws-ec2-metadata-token")) {
		s.count.unauthorized.Add(1)
		writeError(w, http.StatusUnauthorized)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/latest")
	switch {
	case !ok:
		writeError(w, http.StatusNotFound)
	case rest == "":
		redirect(w, r.URL.Path+"/")
	default:
		serveTree(w, s.tree, rest, r.URL.Path)
	}
}

// serveTree answers path (below /latest) from tree; full is the request
// path, used for the Location of a directory asked without its slash.
func serveTree(w http.ResponseWriter, tree map[string]string, path, full string) {
	if body, ok := tree[path]; ok {
		writeText(w, body)
		return
	}
	if _, ok := tree[path+"/"]; ok {
		redirect(w, full+"/")
		return
	}
	writeError(w, http.StatusNotFound)
}

func redirect(w http.ResponseWriter, location string) {
	w.Header().Set("Location", location)
	writeError(w, http.StatusMovedPermanently)
}

func writeText(w http.ResponseWriter, body string) {
	h := w.Header()
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	_, _ = io.WriteString(w, body)
}
