package main

import (
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// tokenTTL is the lifetime of the token taken before the kill.
const tokenTTL = "600"

// killed: the user takes a token, imdsguard is killed with SIGKILL, and
// every caller is refused at once while nothing reaches IMDS.
func (d *demo) killed() {
	r := d.run(d.hostUser, d.curl(imdsURL+"/latest/api/token",
		"-X", "PUT", "-H", "X-aws-ec2-metadata-token-ttl-seconds: "+tokenTTL).with("a token, for step 7"))
	d.token, _ = testbed.CurlStatus(r)
	d.showAudit()
	before := d.imdsRequests()
	pid := d.guard.Pid()
	if err := d.guard.Kill(); err != nil {
		d.t.Fatalf("kill imdsguard (pid %d): %v", pid, err)
	}
	d.p.say("  killed imdsguard (pid %d) with SIGKILL: no chance to remove its rules", pid)
	status := d.rulesStatus()
	status.lines = 1
	d.run(d.hostRoot, status)
	d.run(d.hostUser, d.curl(instanceIDURL))
	d.run(d.c1Root, d.curl(instanceIDURL))
	d.run(d.hostUser, d.curl(instanceIDv6))
	d.run(d.hostUser, d.boto())
	d.p.say("  -> connection refused (fail closed); requests that reached IMDS meanwhile: %d", d.imdsRequests()-before)
}

// restarted: a new imdsguard serves again, and the token taken from the
// killed one still works (the key file persists).
func (d *demo) restarted() {
	d.startGuard()
	d.run(d.hostUser, d.curl(instanceIDURL))
	d.run(d.hostUser, d.boto())
	d.run(d.c1Root, d.sdk("v2"))
	c := d.curl(instanceIDURL, "-H", "X-aws-ec2-metadata-token: "+d.token)
	c.label = shellWords([]string{"curl", "-H", "X-aws-ec2-metadata-token: <the token from before the kill>", instanceIDURL})
	d.run(d.hostUser, c)
	d.showAudit()
}
