package testbed

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// kubeAPI is a small client of the cluster's API server for the harness's
// own polling (readiness, the node, service accounts): plain HTTPS as
// admin, dialled inside the node's namespace, no client-go. Tests use
// kubectl (Cluster.Kubectl).
type kubeAPI struct {
	base   string
	client *http.Client
}

func newKubeAPI(ns string, p *kubePKI) (*kubeAPI, error) {
	cert, err := tls.LoadX509KeyPair(p.Cert("admin"), p.Key("admin"))
	if err != nil {
		return nil, fmt.Errorf("API client: %w", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.ca)
	tr := &http.Transport{
		DialContext:     DialerIn(ns, 2*time.Second),
		TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}},
	}
	return &kubeAPI{
		base:   "https://" + HostPort("127.0.0.1", KubeAPIPort),
		client: &http.Client{Transport: tr, Timeout: 5 * time.Second},
	}, nil
}

// get decodes the JSON at path into v; an answer other than 200 is an
// error.
func (a *kubeAPI) get(path string, v any) error {
	resp, err := a.client.Get(a.base + path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s: %s", path, resp.Status, body)
	}
	if v == nil {
		return nil
	}
	return json.Unmarshal(body, v)
}

// ok reports whether GET path answers 200.
func (a *kubeAPI) ok(path string) bool { return a.get(path, nil) == nil }

// kubeNode is the part of a Node read here.
type kubeNode struct {
	Spec struct {
		Taints []struct {
			Key    string `json:"key"`
			Effect string `json:"effect"`
		} `json:"taints"`
	} `json:"spec"`
	Status struct {
		Conditions []struct {
			Type   string `json:"type"`
			Status string `json:"status"`
		} `json:"conditions"`
	} `json:"status"`
}

func (n kubeNode) ready() bool {
	for _, c := range n.Status.Conditions {
		if c.Type == "Ready" {
			return c.Status == "True"
		}
	}
	return false
}
