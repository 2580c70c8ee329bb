package fakests

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// maxSkew is how far a request's X-Amz-Date may be from the fake's clock,
// as STS allows.
const maxSkew = 15 * time.Minute

const (
	algorithm  = "AWS4-HMAC-SHA256"
	amzDate    = "X-Amz-Date"
	amzToken   = "X-Amz-Security-Token"
	dateLayout = "20060102T150405Z"
)

// authorization is a parsed SigV4 Authorization header:
// "AWS4-HMAC-SHA256 Credential=KEY/DATE/REGION/SERVICE/aws4_request,
// SignedHeaders=a;b;c, Signature=HEX".
type authorization struct {
	keyID, date, region, service, terminator string
	signedHeaders                            string // as sent: lower case, ";"-separated
	signature                                string
}

// parseAuthorization parses the header; ok is false when it is not a
// well-formed SigV4 header.
func parseAuthorization(h string) (a authorization, ok bool) {
	rest, found := strings.CutPrefix(h, algorithm+" ")
	if !found {
		return a, false
	}
	for _, part := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "Credential":
			scope := strings.Split(v, "/")
			if len(scope) != 5 {
				return a, false
			}
			a.keyID, a.date, a.region, a.service, a.terminator = scope[0], scope[1], scope[2], scope[3], scope[4]
		case "SignedHeaders":
			a.signedHeaders = v
		case "Signature":
			a.signature = v
		}
	}
	return a, a.keyID != "" && a.signedHeaders != "" && a.signature != ""
}

// verify checks r's signature (body is its payload) against the accepted
// keys at now, as STS does: the scope names the service sts and the day of
// X-Amz-Date, the key is one of keys, its session token is the one sent,
// the date is within maxSkew, and the signature is what SigV4 makes of the
// signed headers. It returns nil or the error to answer.
func verify(r *http.Request, body []byte, keys map[string]Key, now time.Time) *apiError {
	hdr := r.Header.Get("Authorization")
	if hdr == "" {
		return sender(http.StatusForbidden, MissingAuthenticationToken, "Request is missing Authentication Token")
	}
	a, ok := parseAuthorization(hdr)
	if !ok {
		return sender(http.StatusBadRequest, IncompleteSignature, "Authorization header requires Credential, SignedHeaders and Signature: %q", hdr)
	}
	key, ok := keys[a.keyID]
	if !ok || r.Header.Get(amzToken) != key.SessionToken {
		return sender(http.StatusForbidden, InvalidClientTokenID, msgInvalidToken)
	}
	signed, err := time.Parse(dateLayout, r.Header.Get(amzDate))
	switch {
	case err != nil:
		return sender(http.StatusBadRequest, IncompleteSignature, "X-Amz-Date %q is not an ISO 8601 basic date", r.Header.Get(amzDate))
	case a.service != "sts" || a.terminator != "aws4_request":
		return sender(http.StatusForbidden, SignatureDoesNotMatch, "Credential should be scoped to correct service: 'sts'.")
	case a.date != signed.Format("20060102"):
		return sender(http.StatusForbidden, SignatureDoesNotMatch, "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: %q != %q", a.date, signed.Format("20060102"))
	case signed.Before(now.Add(-maxSkew)) || signed.After(now.Add(maxSkew)):
		return sender(http.StatusForbidden, SignatureDoesNotMatch, "Signature expired: %s is now earlier or later than %s by more than 15 min.", signed.Format(dateLayout), now.UTC().Format(dateLayout))
	}
	want, wantHeaders := expectedSignature(r, body, a, key, signed)
	if wantHeaders != a.signedHeaders || !hmac.Equal([]byte(want), []byte(a.signature)) {
		return sender(http.StatusForbidden, SignatureDoesNotMatch, msgBadSignature)
	}
	return nil
}

// expectedSignature signs, with aws-sdk-go-v2's own SigV4 signer, a copy
// of r that holds only the headers a says were signed, at the time they
// were signed, and returns the signature and the signed headers the signer
// chose (when they differ from a's, the request was not signed as the SDK
// signs: a refusal).
func expectedSignature(r *http.Request, body []byte, a authorization, key Key, at time.Time) (signature, signedHeaders string) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	u := &url.URL{Scheme: scheme, Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	c := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: http.Header{}}
	for _, name := range strings.Split(a.signedHeaders, ";") {
		switch name {
		case "host":
		case "content-length":
			c.ContentLength = r.ContentLength
		default:
			c.Header[http.CanonicalHeaderKey(name)] = r.Header.Values(name)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: key.AccessKeyID, SecretAccessKey: key.SecretAccessKey, SessionToken: key.SessionToken}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, c, hex.EncodeToString(sum[:]), a.service, a.region, at); err != nil {
		return "", ""
	}
	got, ok := parseAuthorization(c.Header.Get("Authorization"))
	if !ok {
		return "", ""
	}
	return got.signature, got.signedHeaders
}
