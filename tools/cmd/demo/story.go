package main

import (
	"strings"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// The URLs the clients ask for: the metadata service's own addresses.
const (
	imdsURL       = "http://" + testbed.IMDSv4
	metaURL       = imdsURL + "/latest/meta-data"
	instanceIDURL = metaURL + "/instance-id"
	instanceIDv6  = "http://[" + testbed.IMDSv6 + "]/latest/meta-data/instance-id"
)

// tell runs the demo: the instance, then the steps in order.
func tell(t testbed.TB, p *printer) {
	d := newDemo(t, p)
	t.Cleanup(func() { d.goodbye() }) // the first cleanup added runs last
	d.intro()
	steps := []struct {
		title string
		run   func()
	}{
		{"Without imdsguard: legacy IMDSv1-only clients break against a tokens-required IMDS", d.withoutGuard},
		{"imdsguard starts in the host namespace: the same clients, unchanged, now work", d.withGuard},
		{"Role credentials: denied to the non-root user, served to root (default policy)", d.credentials},
		{"Bypass attempts: one canonical path decides, relayed requests are refused", d.bypass},
		{"The kernel rules: imdsguard rules status", d.rules},
		{"imdsguard killed (SIGKILL): the rules stay, callers are refused, never sent to IMDS", d.killed},
		{"imdsguard restarted: served again (tokens survive: the key file persists)", d.restarted},
	}
	for i, s := range steps {
		p.step(i+1, s.title)
		s.run()
	}
	p.step(0, "Done")
}

// intro says what the instance is made of.
func (d *demo) intro() {
	d.p.line(d.p.paint(bold, "imdsguard demo") + ": an EC2 instance modelled in three network namespaces made for this run:")
	d.p.say("  %-14s IMDS: amazon-ec2-metadata-mock on %s and %s, tokens required", d.h.IMDSNS, testbed.IMDSv4, testbed.IMDSv6)
	d.p.say("  %-14s the instance itself: imdsguard and its kernel rules will run here", d.h.HostNS)
	d.p.say("  %-14s a container, behind a veth of the host", d.h.C1NS)
	d.p.line("IMDS requires tokens, like an instance set to http-tokens required. Clients run")
	d.p.line("unconfigured (default endpoint " + testbed.IMDSv4 + "); " + d.user.String() + " is a non-root user.")
}

// goodbye says what was removed, once the cleanups have run.
func (d *demo) goodbye() {
	if d.t.Failed() {
		d.p.line(d.p.paint(red, "The demo stopped before its end; everything it made is removed."))
		return
	}
	removed := "the namespaces " + strings.Join(d.h.Namespaces(), ", ")
	if d.made {
		removed += " and the user " + d.user.Name
	}
	d.p.say("Every process stopped; removed %s.", removed)
}

func (d *demo) withoutGuard() {
	d.run(d.hostUser, d.curl(instanceIDURL))
	d.run(d.hostUser, d.boto().with("boto 2.49, IMDSv1 only"))
	d.run(d.hostUser, d.sdk("v1").with("aws-sdk-go v1.25, IMDSv1 only"))
	d.run(d.hostUser, d.sdk("v2").with("aws-sdk-go v2: IMDSv2 clients are fine"))
	d.p.say("  -> 401 and nothing straight from IMDS: the instance cannot require tokens without breaking these.")
}

func (d *demo) withGuard() {
	d.startGuard()
	d.run(d.hostUser, d.curl(instanceIDURL))
	d.run(d.hostUser, d.boto())
	d.run(d.hostUser, d.sdk("v1"))
	d.run(d.hostUser, d.sdk("v2"))
	d.run(d.hostUser, d.ec2Metadata())
	d.run(d.hostUser, d.ec2metadata())
	d.run(d.hostUser, d.curl(instanceIDv6).with("IPv6 too"))
	d.showAudit()
	d.p.say("  From the container c1 (through PREROUTING; tokens get hop limit 2):")
	d.run(d.c1Root, d.curl(instanceIDURL))
	d.run(d.c1Root, d.boto())
	d.run(d.c1Root, d.sdk("v1"))
	d.run(d.c1Root, d.sdk("v2"))
	d.run(d.c1Root, d.ec2Metadata())
	d.run(d.c1Root, d.awsCLI())
	d.showAudit()
	d.p.say("  -> v1 requests are answered through one IMDSv2 session; v2 clients get tokens minted by imdsguard.")
	d.p.say("     (The container's uid 0 is not the host's root: users entries name host users, so it gets")
	d.p.say("     the others rule, without the role credentials.)")
}

func (d *demo) credentials() {
	d.run(d.hostUser, d.awsCLI())
	d.run(d.hostUser, d.botocore())
	d.run(d.hostUser, d.curl(metaURL+"/iam/security-credentials/"))
	d.run(d.hostRoot, d.awsCLI())
	d.showAudit()
}

func (d *demo) bypass() {
	d.run(d.hostUser, d.curl(metaURL+"/placement/..%2fiam/security-credentials/", "--path-as-is"))
	d.run(d.hostUser, d.curl(imdsURL+"//latest/meta-data/%69am/security-credentials/", "--path-as-is"))
	d.run(d.hostRoot, d.curl(instanceIDURL, "-H", "X-Forwarded-For: 203.0.113.9").with("an SSRF relay"))
	d.showAudit()
}

func (d *demo) rules() {
	d.run(d.hostRoot, d.rulesStatus())
}
