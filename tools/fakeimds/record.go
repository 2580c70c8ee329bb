package fakeimds

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
)

// Record is one received request as written to the record file, one JSON
// object a line. Target is the raw request target (r.RequestURI), byte for
// byte; Header holds every header as Go received it (names canonicalized),
// Host apart because Go moves it out of the header map.
type Record struct {
	Method string              `json:"method"`
	Target string              `json:"target"`
	Proto  string              `json:"proto"`
	Host   string              `json:"host"`
	Header map[string][]string `json:"header"`
}

// recorder writes Records to w, one line each, safe for concurrent use.
type recorder struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func newRecorder(w io.Writer) *recorder {
	return &recorder{enc: json.NewEncoder(w)}
}

func (rc *recorder) record(r *http.Request) error {
	rec := Record{Method: r.Method, Target: r.RequestURI, Proto: r.Proto, Host: r.Host, Header: r.Header}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if err := rc.enc.Encode(rec); err != nil {
		return fmt.Errorf("record %s %s: %w", r.Method, r.RequestURI, err)
	}
	return nil
}
