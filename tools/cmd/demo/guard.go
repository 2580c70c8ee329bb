package main

import (
	"fmt"
	"strings"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// startGuard starts imdsguard in the host namespace with the default
// configuration (testbed.HostGuardConfig: every request on its own audit
// line) and says where it listens.
func (d *demo) startGuard() {
	d.guard = d.h.StartGuard(testbed.HostGuardConfig{})
	d.shown = 0
	var serving map[string]any
	testbed.WaitFor(d.t, "imdsguard's serving line", func() bool {
		serving = event(d.guard, "imdsguard serving")
		return serving != nil
	})
	d.p.say("  imdsguard (pid %d) runs in %s: rules %v; proxy listening on %s",
		d.guard.Pid(), d.h.HostNS, serving["rules"], joinAny(serving["listen"]))
}

// joinAny joins a JSON list with ", ".
func joinAny(v any) string {
	list, _ := v.([]any)
	s := make([]string, len(list))
	for i, x := range list {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ", ")
}

// event is g's first log line whose msg is msg, or nil.
func event(g *testbed.Guard, msg string) map[string]any {
	for _, ev := range g.Events() {
		if ev["msg"] == msg {
			return ev
		}
	}
	return nil
}

// showAudit shows the audit events the daemon logged since the last call.
func (d *demo) showAudit() {
	evs := auditEvents(d.guard.Events())
	fresh := evs[d.shown:]
	d.shown = len(evs)
	d.p.say("  audit log (imdsguard's JSON lines, msg \"imds request\") for this step:")
	if len(fresh) == 0 {
		d.p.say("    (no audit events)")
		return
	}
	rows := make([][]string, len(fresh))
	for i, ev := range fresh {
		rows[i] = auditRow(ev)
	}
	d.p.table(auditHeader(), rows, d.p.paintDecision)
	for _, why := range refusals(fresh) {
		d.p.say("    %s", why)
	}
}

// imdsRequests counts the requests that reached IMDS (both AEMMs).
func (d *demo) imdsRequests() int {
	return d.h.AEMM4.Requests() + d.h.AEMM6.Requests()
}
