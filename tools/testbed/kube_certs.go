package testbed

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// The cluster's PKI is made here with crypto/x509, as kubeadm would make
// it, in the cluster's pki directory: one CA signs the API server's
// serving certificate, the kubelet's serving certificate and every client
// certificate; the service accounts' tokens are signed with a key of their
// own. ECDSA P-256 keys: made in microseconds, accepted everywhere
// (ES256 for the tokens).

// kubeCert is a certificate to issue: its subject and what it is for.
type kubeCert struct {
	file   string // base name of NAME.crt and NAME.key
	cn     string
	orgs   []string
	server bool // a serving certificate for ips and dns; else a client one
	ips    []string
	dns    []string
}

// kubePKI is where the pki files are.
type kubePKI struct {
	dir string
	ca  *x509.Certificate
	key *ecdsa.PrivateKey
}

// CACert is the path of the CA certificate.
func (p *kubePKI) CACert() string { return filepath.Join(p.dir, "ca.crt") }

// Cert and Key are the paths of the certificate and key named name.
func (p *kubePKI) Cert(name string) string { return filepath.Join(p.dir, name+".crt") }
func (p *kubePKI) Key(name string) string  { return filepath.Join(p.dir, name+".key") }

// kubeCerts are the certificates of a cluster whose API server is reached
// at the node's address, 127.0.0.1 and the kubernetes service's address.
func kubeCerts(node, nodeIP string) []kubeCert {
	return []kubeCert{
		{file: "apiserver", cn: "kube-apiserver", server: true,
			ips: []string{"127.0.0.1", nodeIP, KubeServiceIP},
			dns: []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}},
		{file: "kubelet-serving", cn: node, server: true, ips: []string{"127.0.0.1", nodeIP}, dns: []string{node}},
		{file: "admin", cn: "kubernetes-admin", orgs: []string{"system:masters"}},
		{file: "apiserver-kubelet-client", cn: "kube-apiserver-kubelet-client", orgs: []string{"system:masters"}},
		{file: "controller-manager", cn: "system:kube-controller-manager"},
		{file: "scheduler", cn: "system:kube-scheduler"},
		{file: "kubelet", cn: "system:node:" + node, orgs: []string{"system:nodes"}},
		// kube-proxy: the user the bootstrap ClusterRoleBinding
		// system:node-proxier grants its rights to.
		{file: "kube-proxy", cn: "system:kube-proxy"},
	}
}

// newKubePKI writes the CA, every certificate of kubeCerts and the
// service-account key pair (sa.key, sa.pub) into dir.
func newKubePKI(dir, node, nodeIP string) (*kubePKI, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("kube pki: %w", err)
	}
	p := &kubePKI{dir: dir}
	if err := p.makeCA(); err != nil {
		return nil, fmt.Errorf("kube pki: CA: %w", err)
	}
	for _, c := range kubeCerts(node, nodeIP) {
		if err := p.issue(c); err != nil {
			return nil, fmt.Errorf("kube pki: %s: %w", c.file, err)
		}
	}
	if err := p.serviceAccountKey(); err != nil {
		return nil, fmt.Errorf("kube pki: service account key: %w", err)
	}
	return p, nil
}

// template is a certificate valid from an hour ago for a day.
func template(cn string, orgs []string) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}, nil
}

func (p *kubePKI) makeCA() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl, err := template("imdsguard-test-ca", nil)
	if err != nil {
		return err
	}
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage |= x509.KeyUsageCertSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return err
	}
	if p.ca, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	p.key = key
	return writeCertKey(p.CACert(), p.Key("ca"), der, key)
}

// issue signs c with the CA and writes it with its key.
func (p *kubePKI) issue(c kubeCert) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl, err := template(c.cn, c.orgs)
	if err != nil {
		return err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if c.server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.DNSNames = c.dns
		for _, ip := range c.ips {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.key)
	if err != nil {
		return err
	}
	return writeCertKey(p.Cert(c.file), p.Key(c.file), der, key)
}

// serviceAccountKey writes sa.key (the API server signs tokens with it,
// the controller manager too) and sa.pub (the API server verifies them).
func (p *kubePKI) serviceAccountKey() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	if err := writeKey(p.Key("sa"), key); err != nil {
		return err
	}
	return writePEM(filepath.Join(p.dir, "sa.pub"), "PUBLIC KEY", pub)
}

func writeCertKey(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	if err := writePEM(certPath, "CERTIFICATE", der); err != nil {
		return err
	}
	return writeKey(keyPath, key)
}

func writeKey(path string, key *ecdsa.PrivateKey) error {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	return writePEM(path, "EC PRIVATE KEY", der)
}

func writePEM(path, typ string, der []byte) error {
	return os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600)
}

// kubeconfig is a kubeconfig file for the client certificate user of p,
// talking to server.
func (p *kubePKI) kubeconfig(server, user string) string {
	return fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: imdsguard-test
  cluster: {server: %q, certificate-authority: %q}
users:
- name: %s
  user: {client-certificate: %q, client-key: %q}
contexts:
- name: imdsguard-test
  context: {cluster: imdsguard-test, user: %s}
current-context: imdsguard-test
`, server, p.CACert(), user, p.Cert(user), p.Key(user), user)
}
