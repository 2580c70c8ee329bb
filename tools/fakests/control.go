package fakests

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// The control API, for a fake run as bin/fakests (the Go methods do the
// same in the process that serves one):
//
//	GET    /_fakests/calls   every call so far, a JSON array of Call
//	DELETE /_fakests/calls   ClearCalls
//	PUT    /_fakests/fault   SetRoleFault: FaultSpec as JSON
//	DELETE /_fakests/fault   ClearFaults
//	PUT    /_fakests/keys    SetKeys: a JSON array of Key
const (
	ControlPrefix = "/_fakests/"
	callsPath     = ControlPrefix + "calls"
	faultPath     = ControlPrefix + "fault"
	keysPath      = ControlPrefix + "keys"
)

// FaultSpec is a Fault on the wire: Role "" is every role; Delay is a Go
// duration ("2s"); Code "" and no Delay remove the fault.
type FaultSpec struct {
	Role  string `json:"role,omitempty"`
	Code  Code   `json:"code,omitempty"`
	Delay string `json:"delay,omitempty"`
	Times int    `json:"times,omitempty"`
}

func (fs FaultSpec) fault() (Fault, error) {
	f := Fault{Code: fs.Code, Times: fs.Times}
	if fs.Delay != "" {
		d, err := time.ParseDuration(fs.Delay)
		if err != nil {
			return f, fmt.Errorf("fault delay: %w", err)
		}
		f.Delay = d
	}
	return f, f.validate()
}

func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	route := r.Method + " " + r.URL.Path
	switch route {
	case "GET " + callsPath:
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(s.Calls())
	case "DELETE " + callsPath:
		s.ClearCalls()
	case "DELETE " + faultPath:
		s.ClearFaults()
	case "PUT " + faultPath:
		var fs FaultSpec
		if err := decode(r, &fs); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		f, err := fs.fault()
		if err == nil {
			err = s.SetRoleFault(fs.Role, f)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	case "PUT " + keysPath:
		var keys []Key
		if err := decode(r, &keys); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.SetKeys(keys...)
	default:
		http.Error(w, "no such control route: "+route, http.StatusNotFound)
	}
}

// decode reads r's JSON body into v strictly.
func decode(r *http.Request, v any) error {
	d := json.NewDecoder(io.LimitReader(r.Body, maxBody))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("decode %s: %w", r.URL.Path, err)
	}
	return nil
}

// Client drives the control API of a fake at URL (its base URL, as the
// STS endpoint) through HTTP (nil: http.DefaultClient): a fake in another
// process or network namespace.
type Client struct {
	URL  string
	HTTP *http.Client
}

// Calls returns the fake's calls.
func (c Client) Calls() ([]Call, error) {
	var calls []Call
	body, err := c.do(http.MethodGet, callsPath, nil)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(body, &calls); err != nil {
		return nil, fmt.Errorf("fakests calls: %w", err)
	}
	return calls, nil
}

// ClearCalls makes the fake forget its calls.
func (c Client) ClearCalls() error { return c.send(http.MethodDelete, callsPath, nil) }

// SetRoleFault sets the fault for role ("" = every role).
func (c Client) SetRoleFault(role string, f Fault) error {
	fs := FaultSpec{Role: role, Code: f.Code, Times: f.Times}
	if f.Delay != 0 {
		fs.Delay = f.Delay.String()
	}
	return c.send(http.MethodPut, faultPath, fs)
}

// ClearFaults removes every fault.
func (c Client) ClearFaults() error { return c.send(http.MethodDelete, faultPath, nil) }

// SetKeys replaces the credentials requests may be signed with.
func (c Client) SetKeys(keys ...Key) error { return c.send(http.MethodPut, keysPath, keys) }

func (c Client) send(method, path string, v any) error {
	var body []byte
	if v != nil {
		var err error
		if body, err = json.Marshal(v); err != nil {
			return fmt.Errorf("fakests %s %s: %w", method, path, err)
		}
	}
	_, err := c.do(method, path, body)
	return err
}

func (c Client) do(method, path string, body []byte) ([]byte, error) {
	req, err := http.NewRequest(method, c.URL+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("fakests %s %s: %w", method, path, err)
	}
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fakests %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("fakests %s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fakests %s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(out))
	}
	return out, nil
}
