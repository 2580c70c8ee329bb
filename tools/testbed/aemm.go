package testbed

import (
	"strconv"
	"strings"
)

// AEMMInstanceID is the instance id amazon-ec2-metadata-mock serves by
// default; AEMMAccessKeyID the AccessKeyId of its role credentials.
const (
	AEMMInstanceID  = "i-1234567890abcdef0"
	AEMMRole        = "baskinc-role"
	AEMMAccessKeyID = "12345678901"
)

// AEMMOptions say where amazon-ec2-metadata-mock listens and how.
type AEMMOptions struct {
	Host         string // default 127.0.0.1; an IPv6 address is bracketed for -n
	Port         int    // default a free port (give one when NS is set)
	AllowIMDSv1  bool   // omit -I: serve GETs without a token, as IMDS with http-tokens optional
	NS           string // network namespace to run in
	ExtraArgs    []string
	HomeContents string // aemm-config.json written into its HOME; "" = none (AEMM's defaults)
}

// AEMM is a running amazon-ec2-metadata-mock.
type AEMM struct {
	*Proc
	Addr string // host:port
	URL  string // http://host:port, no trailing slash
}

// StartAEMM starts bin/aemm with HOME set to a private directory (it reads
// $HOME/aemm-config.json) and waits until it accepts connections. By default
// tokens are required (-I), as on an instance set to http-tokens required.
func (e *Env) StartAEMM(o AEMMOptions) *AEMM {
	e.T.Helper()
	e.RequireBins("aemm")
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Port == 0 {
		o.Port = FreePort(e.T)
	}
	home := e.Path("aemm-home-" + strconv.Itoa(o.Port))
	e.WriteFile("aemm-home-"+strconv.Itoa(o.Port)+"/.keep", "")
	if o.HomeContents != "" {
		e.WriteFile("aemm-home-"+strconv.Itoa(o.Port)+"/aemm-config.json", o.HomeContents)
	}
	p := StartProc(e.T, ProcSpec{
		Name: "aemm", Path: e.Bin("aemm"), NS: o.NS,
		Args: aemmArgs(o), Env: []string{"HOME=" + home},
	})
	a := &AEMM{Proc: p, Addr: HostPort(o.Host, o.Port)}
	a.URL = "http://" + a.Addr
	WaitListening(e.T, p, o.NS, a.Addr)
	return a
}

func aemmArgs(o AEMMOptions) []string {
	host := o.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	args := []string{"-n", host, "-p", strconv.Itoa(o.Port)}
	if !o.AllowIMDSv1 {
		args = append(args, "-I")
	}
	return append(args, o.ExtraArgs...)
}

// Requests counts the requests AEMM logged so far ("Received request"
// lines): what reached the metadata service.
func (a *AEMM) Requests() int {
	return strings.Count(a.Stdout()+a.Stderr(), "Received request")
}
