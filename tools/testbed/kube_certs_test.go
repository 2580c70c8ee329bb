package testbed

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"strings"
	"testing"
)

// TestKubePKI: every certificate chains to the CA for its use; the API
// server's names every address a client dials; the client certificates
// carry the identities RBAC and the Node authorizer expect.
func TestKubePKI(t *testing.T) {
	p, err := newKubePKI(t.TempDir(), "node-1", "192.0.2.1")
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(p.ca)
	for _, c := range kubeCerts("node-1", "192.0.2.1") {
		pair, err := tls.LoadX509KeyPair(p.Cert(c.file), p.Key(c.file))
		if err != nil {
			t.Fatalf("%s: %v", c.file, err)
		}
		leaf, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		use := x509.ExtKeyUsageClientAuth
		if c.server {
			use = x509.ExtKeyUsageServerAuth
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{use}}); err != nil {
			t.Errorf("%s: %v", c.file, err)
		}
		if leaf.Subject.CommonName != c.cn || strings.Join(leaf.Subject.Organization, ",") != strings.Join(c.orgs, ",") {
			t.Errorf("%s: subject %v; want CN %s O %v", c.file, leaf.Subject, c.cn, c.orgs)
		}
		if c.file == "apiserver" {
			for _, ip := range []string{"127.0.0.1", "192.0.2.1", KubeServiceIP} {
				if err := leaf.VerifyHostname(ip); err != nil {
					t.Errorf("apiserver certificate: %v", err)
				}
			}
			if err := leaf.VerifyHostname("kubernetes.default.svc"); err != nil {
				t.Errorf("apiserver certificate: %v", err)
			}
		}
	}
	if _, err := os.Stat(p.Key("sa")); err != nil {
		t.Error(err)
	}
	if net.ParseIP(KubeServiceIP) == nil {
		t.Errorf("KubeServiceIP %q is no address", KubeServiceIP)
	}
}

// TestKubeconfig names the server, the CA and the user's pair.
func TestKubeconfig(t *testing.T) {
	p := &kubePKI{dir: "/pki"}
	kc := p.kubeconfig("https://192.0.2.1:6443", "kubelet")
	for _, want := range []string{`server: "https://192.0.2.1:6443"`, `certificate-authority: "/pki/ca.crt"`,
		`client-certificate: "/pki/kubelet.crt"`, `client-key: "/pki/kubelet.key"`, "current-context: imdsguard-test"} {
		if !strings.Contains(kc, want) {
			t.Errorf("kubeconfig lacks %s:\n%s", want, kc)
		}
	}
}
