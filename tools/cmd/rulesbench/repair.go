package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// repairWait bounds how long a repair may take before it is reported as
// not seen (the 60,000-rule figure was 5 s).
const repairWait = 20 * time.Second

// repairCase is a change from outside that the daemon must undo; script
// runs in the host namespace with the backend's tools as $IPT, $SAVE and
// $RESTORE. undo (optional) removes what the case added and the daemon
// leaves (a rule it moved its jump above).
type repairCase struct {
	Name, Script, Undo string
}

// ownChains are imdsguard's chains (internal/redirect/chains.go) with their
// tables.
var ownChains = [][2]string{
	{"nat", "IMDSGUARD-OUT"}, {"nat", "IMDSGUARD-PRE"},
	{"filter", "IMDSGUARD-IN"}, {"filter", "IMDSGUARD-FWD"}, {"filter", "IMDSGUARD-FENCE"},
}

func flushScript() string {
	var b strings.Builder
	for _, c := range ownChains {
		fmt.Fprintf(&b, "$IPT -t %s -F %s\n", c[0], c[1])
	}
	return b.String()
}

var repairCases = []repairCase{
	{Name: "flush of its chains", Script: flushScript()},
	// The PREROUTING jump, deleted by its own spec (as -S prints it).
	{Name: "jump deleted", Script: `eval "$($IPT -t nat -S PREROUTING | grep -e '-j IMDSGUARD-PRE' | sed 's/^-A /$IPT -t nat -D /')"`},
	{Name: "rule before jump", Script: "$IPT -t nat -I PREROUTING 1 -p tcp -j ACCEPT",
		Undo: "$IPT -t nat -D PREROUTING -p tcp -j ACCEPT"},
	// firewalld-like: the whole nat table rewritten without imdsguard's
	// lines; kube-proxy's stay.
	{Name: "nat reload", Script: "$SAVE -t nat | grep -v IMDSGUARD | $RESTORE -T nat"},
	{Name: "landing deleted", Script: "ip addr del 169.254.254.169/32 dev lo"},
}

// repair is how one case went: when `imdsguard rules status` first said
// OK after the change (the column), and when the daemon logged the
// restore, both from the moment the changing command returned.
type repair struct {
	Case           string
	Status, Logged time.Duration // 0: not seen within repairWait
}

// measureRepairs runs every case against the running daemon g.
func (rn *runner) measureRepairs(t testbed.TB) []repair {
	var out []repair
	for _, c := range repairCases {
		if t.Failed() {
			break
		}
		out = append(out, rn.measureRepair(t, c))
		if c.Undo != "" {
			rn.shell(t, c.Undo)
		}
	}
	return out
}

// measureRepair applies c and times the repair. The rules are whole when
// it begins: the last thing before it was a rules status that said so (in
// commandTimes, or the end of the previous case; an undo is nothing the
// daemon restores).
func (rn *runner) measureRepair(t testbed.TB, c repairCase) repair {
	logged := rn.restoreLines()
	rn.shell(t, c.Script)
	t0 := time.Now()
	r := repair{Case: c.Name}
	r.Status, _ = rn.untilStatusOK(t0, repairWait)
	if r.Status == 0 {
		t.Fatalf("%s: rules status not OK within %v", c.Name, repairWait)
	}
	if at, ok := rn.restoreAfter(logged); ok {
		r.Logged = max(at.Sub(t0), time.Millisecond)
	}
	rn.t.Logf("%s: rules status OK after %v, daemon logged the restore after %v", c.Name, fmtMS(r.Status), fmtMS(r.Logged))
	return r
}

// untilStatusOK polls `imdsguard rules status` every 20 ms until it exits 0
// and returns when that call returned, measured from t0.
func (rn *runner) untilStatusOK(t0 time.Time, limit time.Duration) (time.Duration, bool) {
	for time.Since(t0) < limit {
		if _, _, err := rn.imdsguard("rules", "status"); err == nil {
			return time.Since(t0), true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, false
}

// restoreLines counts the daemon's log lines about a restore so far.
func (rn *runner) restoreLines() int { return len(rn.restoreEvents()) }

// restoreAfter returns the time of the last restore line after the first
// n, if any.
func (rn *runner) restoreAfter(n int) (time.Time, bool) {
	evs := rn.restoreEvents()
	if len(evs) <= n {
		return time.Time{}, false
	}
	at, err := time.Parse(time.RFC3339Nano, fmt.Sprint(evs[len(evs)-1]["time"]))
	return at, err == nil
}

// restoreEvents are the daemon's log lines whose message speaks of
// restored rules.
func (rn *runner) restoreEvents() []map[string]any {
	var out []map[string]any
	for _, ev := range rn.g.Events() {
		if msg, _ := ev["msg"].(string); strings.Contains(msg, "restored") {
			out = append(out, ev)
		}
	}
	return out
}

func fmtMS(d time.Duration) string {
	if d == 0 {
		return "—"
	}
	return ms(d)
}
