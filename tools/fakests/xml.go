package fakests

import (
	"encoding/xml"
	"net/http"
	"strconv"
	"time"
)

type assumeRoleResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ AssumeRoleResponse"`
	Result  struct {
		AssumedRoleUser struct {
			AssumedRoleID string `xml:"AssumedRoleId"`
			Arn           string `xml:"Arn"`
		} `xml:"AssumedRoleUser"`
		Credentials struct {
			AccessKeyID     string `xml:"AccessKeyId"`
			SecretAccessKey string `xml:"SecretAccessKey"`
			SessionToken    string `xml:"SessionToken"`
			Expiration      string `xml:"Expiration"`
		} `xml:"Credentials"`
		PackedPolicySize *int `xml:"PackedPolicySize,omitempty"`
	} `xml:"AssumeRoleResult"`
	RequestID string `xml:"ResponseMetadata>RequestId"`
}

type errorResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
	Type    string   `xml:"Error>Type"`
	Code    Code     `xml:"Error>Code"`
	Message string   `xml:"Error>Message"`
	ID      string   `xml:"RequestId"`
}

// writeCredentials answers a successful AssumeRole of in with key, valid
// until exp.
func writeCredentials(w http.ResponseWriter, requestID string, in assumeRoleInput, key Key, exp time.Time) {
	var resp assumeRoleResponse
	r := &resp.Result
	r.AssumedRoleUser.AssumedRoleID = assumedRoleID(in.roleARN, in.session)
	r.AssumedRoleUser.Arn = in.assumedRoleARN()
	r.Credentials.AccessKeyID = key.AccessKeyID
	r.Credentials.SecretAccessKey = key.SecretAccessKey
	r.Credentials.SessionToken = key.SessionToken
	r.Credentials.Expiration = exp.UTC().Format(time.RFC3339)
	if len(in.tags) > 0 {
		size := 1 + len(in.tags) // a percentage of the packed size allowed, as STS reports it with tags
		r.PackedPolicySize = &size
	}
	resp.RequestID = requestID
	writeXML(w, http.StatusOK, requestID, resp)
}

// writeError answers e.
func writeError(w http.ResponseWriter, requestID string, e *apiError) {
	writeXML(w, e.status, requestID, errorResponse{Type: e.typ, Code: e.code, Message: e.message, ID: requestID})
}

func writeXML(w http.ResponseWriter, status int, requestID string, v any) {
	body, err := xml.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	body = append([]byte(xml.Header[:len(xml.Header)-1]), body...)
	h := w.Header()
	h.Set("Content-Type", "text/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("X-Amzn-Requestid", requestID)
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
