package testbed

import "testing"

// A test daemon asks no runtime of the machine unless the test names its own.
func TestNoMachineRuntimes(t *testing.T) {
	if got := noMachineRuntimes("policy: {}\n"); got != "runtimes: {docker: \"\", containerd: \"\", crio: \"\"}\n" {
		t.Errorf("without runtimes: %q", got)
	}
	if got := noMachineRuntimes("policy: {}\nruntimes: {docker: /tmp/d.sock}\n"); got != "" {
		t.Errorf("with runtimes: %q", got)
	}
}
