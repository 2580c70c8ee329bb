package check

import (
	"context"
	"errors"
	"io/fs"
	"strings"
)

// Runtime is what one configured container runtime said.
type Runtime struct {
	Name   string // docker, containerd, cri-o
	Key    string // its key under runtimes: (docker, containerd, crio)
	Socket string
	Absent bool   // no socket there: not on this node (or not mounted)
	Answer string // what its version call said, when it answered
	Err    error  // why it did not answer (Absent false)
}

func (rt Runtime) line() string {
	at := rt.Name + " at " + rt.Socket + ": "
	switch {
	case rt.Absent:
		return at + "not on this node (no socket; in a pod: or not mounted from the node)"
	case rt.Err != nil:
		return at + "does NOT answer: " + rt.Err.Error()
	}
	return at + "answers: " + rt.Answer
}

const runtimesName = "container runtimes answer (containers and pods are named for the policy)"

// runtimes: every runtime whose socket is there answers, and some runtime
// answers when the interfaces show a container network. c and cerr are
// what the Containers probe said.
func runtimes(ctx context.Context, p Probes, c Containers, cerr error) Result {
	r := Result{Name: runtimesName, Pass: true}
	rts := p.Runtimes(ctx)
	var lines, fixes []string
	answered := 0
	for _, rt := range rts {
		lines = append(lines, rt.line())
		switch {
		case rt.Absent:
		case rt.Err != nil:
			r.Pass = false
			fixes = append(fixes, runtimeFix(rt))
		default:
			answered++
		}
	}
	if len(rts) == 0 {
		lines = append(lines, "none configured (runtimes: all \"\")")
	}
	if seen := recognise(c); cerr == nil && answered == 0 && len(seen) > 0 {
		r.Pass = false
		lines = append(lines, "no runtime answers, yet the interfaces show "+cniNames(seen)+
			": container callers get no name, image, labels or pod, so no containers:/pods: selector matches them and no pod gets a role of its own")
		fixes = append(fixes, "point runtimes: at this node's runtime socket (in the DaemonSet: mount its directory from the node, e.g. /run/containerd)")
	}
	r.Detail = strings.Join(lines, "\n")
	r.Fix = strings.Join(fixes, "; ")
	return r
}

// runtimeFix is what to do about a runtime whose socket is there and does
// not answer.
func runtimeFix(rt Runtime) string {
	if errors.Is(rt.Err, fs.ErrPermission) {
		return "run imdsguard check as root (" + rt.Socket + " is root's)"
	}
	return "start " + rt.Name + " (systemctl start " + rt.Key + "), or set runtimes." + rt.Key + `: "" if this node does not use it`
}
