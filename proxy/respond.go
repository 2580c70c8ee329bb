package proxy

import (
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
)

// errorBody is IMDS's error page.
const errorBody = `<?xml version="1.0" encoding="iso-8859-1"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
		 "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>%[1]d - %[2]s</title>
 </head>
 <body>
  <h1>%[1]d - %[2]s</h1>
 </body>
</html>
`

// errorBodies holds the pages of the statuses imdsguard answers itself.
var errorBodies = func() map[int]string {
	m := map[int]string{}
	for _, s := range []int{400, 401, 403, 404, 405, 414, 502, 504} {
		m[s] = fmt.Sprintf(errorBody, s, http.StatusText(s))
	}
	return m
}()

// errorResponse is an IMDS-style error answer.
func errorResponse(r *http.Request, status int) *http.Response {
	body, ok := errorBodies[status]
	if !ok {
		body = fmt.Sprintf(errorBody, status, http.StatusText(status))
	}
	return response(r, status, "text/html", body)
}

// response is a local answer with the headers IMDS sends.
func response(r *http.Request, status int, contentType, body string) *http.Response {
	return &http.Response{
		Status:     strconv.Itoa(status) + " " + http.StatusText(status),
		StatusCode: status,
		Proto:      "HTTP/1.1",
		ProtoMajor: 1,
		ProtoMinor: 1,
		Header: http.Header{
			"Content-Type":   {contentType},
			"Content-Length": {strconv.Itoa(len(body))},
			"Server":         {"EC2ws"},
		},
		Body:          io.NopCloser(strings.NewReader(body)),
		ContentLength: int64(len(body)),
		Request:       r,
	}
}

// hopByHop are response headers that belong to one connection only.
var hopByHop = []string{"Connection", "Keep-Alive", "Proxy-Connection", "Proxy-Authenticate", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

// passThrough hands IMDS's answer to the caller as it is, minus the headers
// that belong to the upstream connection: the hop-by-hop ones, and those
// that its Connection header names (RFC 9110 7.6.1, as httputil does).
func passThrough(resp *http.Response) *http.Response {
	for _, v := range resp.Header["Connection"] {
		for name := range strings.SplitSeq(v, ",") {
			if name = textproto.TrimString(name); name != "" {
				resp.Header.Del(name)
			}
		}
	}
	for _, h := range hopByHop {
		if _, ok := resp.Header[h]; ok { // a cached answer has none: a look costs less than a delete
			delete(resp.Header, h)
		}
	}
	return resp
}
