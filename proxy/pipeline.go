package proxy

import (
	"context"
	"errors"
	"io"
	"log"
	"net"
	"net/http"

	"github.com/elazarl/goproxy"

	"github.com/imdsguard/imdsguard/internal/imds"
)

// pipeline builds the goproxy server that runs every request through
// p.handle. goproxy never forwards anything itself: handle always returns
// the response, CONNECT is refused, and its transport cannot dial.
func (p *Proxy) pipeline() *goproxy.ProxyHttpServer {
	gp := goproxy.NewProxyHttpServer()
	gp.Logger = log.New(slogWriter{p.log}, "", 0)
	gp.Tr = &http.Transport{DialContext: neverDial, Proxy: nil}
	gp.ConnectDial = func(string, string) (net.Conn, error) { return nil, errNoForwarding }
	gp.NonproxyHandler = http.HandlerFunc(p.serveOrigin)
	gp.OnRequest().DoFunc(func(r *http.Request, _ *goproxy.ProxyCtx) (*http.Request, *http.Response) {
		resp := p.handle(r)
		// goproxy may change the header it writes (it drops a
		// Content-Length when a filter swapped the body), and a cached
		// answer's is shared by every caller: goproxy gets a copy.
		resp.Header = resp.Header.Clone()
		return r, resp
	})
	gp.OnRequest().HandleConnectFunc(func(host string, ctx *goproxy.ProxyCtx) (*goproxy.ConnectAction, string) {
		ctx.Resp = p.refuseConnect(ctx.Req)
		return goproxy.RejectConnect, host
	})
	return gp
}

// serveOrigin serves an origin-form request (a redirected client, or an
// SDK pointed at this endpoint): it gives it the metadata host and runs the
// same pipeline as goproxy's request handler does for absolute-form
// targets, and writes the answer as goproxy writes one (writeResponse).
func (p *Proxy) serveOrigin(w http.ResponseWriter, r *http.Request) {
	r.URL.Scheme, r.URL.Host = "http", imds.Host
	writeResponse(w, p.handle(r))
}

// writeResponse writes a pipeline answer to w: its header (replacing what
// w held), status and body, as goproxy does for the answers of its request
// handlers. The header map may be a cached answer's, shared by every
// caller: its entries are copied into w's own map, and nothing changes it.
func writeResponse(w http.ResponseWriter, resp *http.Response) {
	defer resp.Body.Close()
	h := w.Header()
	clear(h)
	for k, vs := range resp.Header {
		h[k] = vs
	}
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}

var errNoForwarding = errors.New("imdsguard never forwards through goproxy's transport")

func neverDial(context.Context, string, string) (net.Conn, error) {
	return nil, errNoForwarding
}

// refuseConnect is the answer to CONNECT: 405, and the connection closes.
func (p *Proxy) refuseConnect(r *http.Request) *http.Response {
	o := refuse(r, http.StatusMethodNotAllowed, "CONNECT: imdsguard is not a tunnel")
	o.resp.Close = true
	return p.answer(r, p.state(r), Route{}, o)
}
