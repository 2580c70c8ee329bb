package testbed

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// Kill sends SIGKILL and waits until the child is reaped: a crash, on
// purpose. The kill is then the expected end, so the Stop at the test's end
// reports nothing (a SIGKILL seen by Stop is otherwise an error).
func (p *Proc) Kill() error {
	if err := p.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	select {
	case <-p.done:
	case <-time.After(killGrace):
		return fmt.Errorf("%s survived SIGKILL for %v", p.Name, killGrace)
	}
	var ee *exec.ExitError
	if errors.As(p.err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
			// done is closed: the waiting goroutine has finished with err,
			// and readers of err wait on done, so this write is ordered.
			p.err = nil
			return nil
		}
	}
	return exitErr(p.Name, p.err)
}
