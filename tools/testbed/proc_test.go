package testbed

import (
	"strings"
	"testing"
	"time"
)

func TestProcStop(t *testing.T) {
	cases := []struct {
		name    string
		script  string
		ready   func(p *Proc) bool // when to call Stop
		wantErr string             // "" = Stop succeeds
	}{
		{"stops on SIGTERM", "echo ready; exec sleep 30", printed("ready"), ""},
		{"exited cleanly by itself", "exit 0", exited, ""},
		{"exit status reported", "exit 3", exited, "exit status 3"},
		{"SIGTERM ignored: killed", "trap '' TERM; echo ready; exec sleep 30", printed("ready"), "ignored SIGTERM"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := startProc(ProcSpec{Path: "/bin/sh", Args: []string{"-c", c.script}})
			if err != nil {
				t.Fatal(err)
			}
			p.StopGrace = 300 * time.Millisecond
			WaitFor(t, c.name, func() bool { return c.ready(p) })
			err = p.Stop()
			if (err == nil) != (c.wantErr == "") || (err != nil && !strings.Contains(err.Error(), c.wantErr)) {
				t.Fatalf("Stop: %v, want %q", err, c.wantErr)
			}
			if done, _ := p.Exited(); !done {
				t.Fatal("not reaped after Stop")
			}
		})
	}
}

func printed(s string) func(*Proc) bool {
	return func(p *Proc) bool { return strings.Contains(p.Stdout(), s) }
}

func exited(p *Proc) bool {
	done, _ := p.Exited()
	return done
}
