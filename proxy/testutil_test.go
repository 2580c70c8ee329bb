package proxy

import (
	"bytes"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/config/field"
	"github.com/imdsguard/imdsguard/internal/token"
	"github.com/imdsguard/imdsguard/internal/upstream"
)

func newRecorder() *httptest.ResponseRecorder { return httptest.NewRecorder() }

func newRequest(method, target string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	r.RemoteAddr = "127.0.0.1:40000"
	return r
}

// newSilentServer accepts requests and never answers them.
func newSilentServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// newEnvUpstream is a proxy whose upstream is at u.
func newEnvUpstream(t *testing.T, u string) *env {
	t.Helper()
	up, err := upstream.New(upstream.Options{Config: upstream.Config{URL: u, TokenTTL: field.Duration{Duration: time.Hour}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	return newEnv(t, func(o *Options) { o.Upstream = up; o.Minter = token.NewMinter(bytes.Repeat([]byte{1}, token.KeyLen)) })
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
