package sts

import (
	"errors"
	"fmt"
)

// Kind is what became of an STS call, as the broker acts on it.
type Kind uint8

const (
	OK          Kind = iota
	Throttled        // Throttling, 429: back off, keep serving what is held
	ServerError      // 5xx: back off, keep serving what is held
	Denied           // AccessDenied and other 4xx: remembered DeniedFor; nothing held is served
	Failed           // no answer (network, timeout) or no node credentials: back off, keep serving what is held
)

var kindNames = [...]string{OK: "ok", Throttled: "throttled", ServerError: "server_error", Denied: "denied", Failed: "error"}

// String is the kind as metrics label it.
func (k Kind) String() string { return kindNames[k] }

// Kinds are every Kind, in order: the metric's label values.
func Kinds() []Kind { return []Kind{OK, Throttled, ServerError, Denied, Failed} }

// Error is a failed AssumeRole, or no credentials to serve.
type Error struct {
	Kind Kind
	Code string // STS's error code ("AccessDenied", "Throttling"); "" when STS did not answer
	Err  error
}

func (e *Error) Error() string {
	if e.Code != "" {
		return fmt.Sprintf("sts %s (%s): %v", e.Kind, e.Code, e.Err)
	}
	return fmt.Sprintf("sts %s: %v", e.Kind, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// KindOf is the Kind of err: OK for nil, Failed for an error that is not
// an *Error.
func KindOf(err error) Kind {
	if err == nil {
		return OK
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Failed
}

// ErrPending is what Get returns when the first credentials of a session
// were not ready within the wait bound.
var ErrPending = errors.New("the role's credentials are being fetched from STS; ask again")
