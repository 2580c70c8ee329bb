package fakests

import (
	"fmt"
	"net/http"
)

// Code is an STS error code; the faults a test can set are among them.
type Code string

// The error codes the fake answers. The first four are the faults a test
// sets (Fault.Code); the others come from the request itself.
const (
	Throttling                 Code = "Throttling"         // 400: STS's rate limit
	AccessDenied               Code = "AccessDenied"       // 403: the caller may not assume the role
	InternalFailure            Code = "InternalFailure"    // 500
	ServiceUnavailable         Code = "ServiceUnavailable" // 503
	InvalidClientTokenID       Code = "InvalidClientTokenId"
	SignatureDoesNotMatch      Code = "SignatureDoesNotMatch"
	IncompleteSignature        Code = "IncompleteSignature"
	MissingAuthenticationToken Code = "MissingAuthenticationToken"
	ValidationError            Code = "ValidationError"
	InvalidAction              Code = "InvalidAction"
	MissingAction              Code = "MissingAction"
)

// faultCodes are the codes a Fault may carry.
var faultCodes = map[Code]bool{Throttling: true, AccessDenied: true, InternalFailure: true, ServiceUnavailable: true}

// apiError is an answer of ErrorResponse: the HTTP status, the fault type
// (Sender or Receiver), the code and the message.
type apiError struct {
	status  int
	typ     string
	code    Code
	message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (%d): %s", e.code, e.status, e.message) }

// sender is an error of the caller's making.
func sender(status int, code Code, format string, args ...any) *apiError {
	return &apiError{status: status, typ: "Sender", code: code, message: fmt.Sprintf(format, args...)}
}

// faultError is the answer of a fault with code for roleARN, signed by keyID.
func faultError(code Code, roleARN, keyID string) *apiError {
	switch code {
	case Throttling:
		return sender(http.StatusBadRequest, code, "Rate exceeded")
	case AccessDenied:
		return sender(http.StatusForbidden, code,
			"User with access key %s is not authorized to perform: sts:AssumeRole on resource: %s", keyID, roleARN)
	case ServiceUnavailable:
		return &apiError{status: http.StatusServiceUnavailable, typ: "Receiver", code: code,
			message: "Service is unable to handle request."}
	default:
		return &apiError{status: http.StatusInternalServerError, typ: "Receiver", code: InternalFailure,
			message: "The request processing has failed because of an unknown error, exception or failure."}
	}
}

// Messages of the signature checks, as STS words them.
const (
	msgInvalidToken = "The security token included in the request is invalid."
	msgBadSignature = "The request signature we calculated does not match the signature you provided. " +
		"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
)
