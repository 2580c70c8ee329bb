package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/check"
	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/tools/testbed"
)

// TestCheckNode: `imdsguard check` and `imdsguard check --ready` on a node
// as the DaemonSet's pod sees it (the host network namespace, the node's
// runtime sockets): a pod wired as the AWS VPC CNI wires it (an
// address-less eni… veth) and a real containerd, with the daemon running,
// with containerd stopped, with the daemon stopped (its rules kept), and
// with the rules removed.
//
//   - running: the eight enforcement checks and the endpoint and IPv6
//     endpoint checks pass (tags INFO, AEMM's hop limit WARN); check names the landing addresses
//     per family, the pod's interface and the CNI it looks like, that
//     containerd answers (its version, through the daemon's client) while
//     the docker and CRI-O sockets are not on this node, and the token
//     OPTIONS answered through the redirect for IPv4 and IPv6; --ready
//     passes with one line, well within check.ReadyTimeout.
//   - containerd stopped: with a pod's interface there and no runtime
//     answering, the runtimes check fails; --ready still passes (it asks
//     no runtime).
//   - daemon stopped, rules kept (fail closed): --ready fails on the
//     redirect answered (connection refused), its rules and landing
//     addresses passing; check fails the same, IMDS still refusing IMDSv1.
//   - rules removed: --ready fails on the rules and the landing addresses,
//     and sends no OPTIONS (it would reach IMDS itself).
func TestCheckNode(t *testing.T) {
	e := testbed.New(t)
	e.RequireBins("aemm", "imdsguard", "imdsclient")
	h := e.NewHost(testbed.HostOptions{})
	ctrd := e.StartContainerd(h.HostNS)
	pod := h.AddPod(netnstest.VPCCNI)
	docker, crio := e.Path("docker.sock"), e.Path("crio.sock")
	g := h.StartGuard(testbed.HostGuardConfig{
		Extra: fmt.Sprintf("runtimes: {docker: %q, containerd: %q, crio: %q}", docker, ctrd.Sock, crio),
	})

	r := e.Run(guardCmd(e, h, g, "check"))
	t.Logf("imdsguard check, daemon running:\n%s", r.Stdout)
	if r.Err != nil || strings.Count(r.Stdout, "PASS  ") != 10 || strings.Contains(r.Stdout, "FAIL") {
		t.Fatalf("check: %v\n%s%s", r.Err, r.Stdout, r.Stderr)
	}
	wantLines(t, "check", r.Stdout,
		"PASS  landing addresses on lo", "ipv4 169.254.254.169/32: present", "ipv6 fd69:6d64:7367::254/128: present",
		pod.HostIf+" (veth, address-less)", "CNI: looks like AWS VPC CNI (1 interface)",
		"PASS  container runtimes answer", "containerd at "+ctrd.Sock+": answers: containerd 1.",
		"docker at "+docker+": not on this node", "cri-o at "+crio+": not on this node",
		"IPv4: OPTIONS to 169.254.169.254:80 answered 200", "IPv6: OPTIONS to [fd00:ec2::254]:80 answered 200")

	start := time.Now()
	r = e.Run(guardCmd(e, h, g, "check", "--ready"))
	took := time.Since(start)
	t.Logf("imdsguard check --ready, daemon running (%v with ip netns exec):\n%s", took.Round(time.Millisecond), r.Stdout)
	if r.Err != nil || strings.Count(r.Stdout, "\n") != 1 || !strings.HasPrefix(r.Stdout, "ready (checked in ") || took >= check.ReadyTimeout {
		t.Fatalf("check --ready: %v after %v, want one line \"ready (checked in ...): ...\" within %v\n%s%s", r.Err, took, check.ReadyTimeout, r.Stdout, r.Stderr)
	}
	wantLines(t, "check --ready", r.Stdout, "landing 169.254.254.169/32, fd69:6d64:7367::254/128 on lo", "token OPTIONS through the redirect answered (IPv4 in ")

	ctrd.StopWhile(func() {
		r := e.Run(guardCmd(e, h, g, "check"))
		t.Logf("imdsguard check, containerd stopped:\n%s", r.Stdout)
		if r.Err == nil || strings.Count(r.Stdout, "FAIL  ") != 1 {
			t.Errorf("check with containerd stopped: %v, want exactly one FAIL\n%s%s", r.Err, r.Stdout, r.Stderr)
		}
		wantLines(t, "check", r.Stdout, "FAIL  container runtimes answer", "containerd at "+ctrd.Sock+": ",
			"no runtime answers, yet the interfaces show AWS VPC CNI", "fix: point runtimes: at this node's runtime socket")
		if r := e.Run(guardCmd(e, h, g, "check", "--ready")); r.Err != nil {
			t.Errorf("check --ready with containerd stopped: %v", r)
		}
	})

	if err := g.Stop(); err != nil {
		t.Fatal(err)
	}
	r = e.Run(guardCmd(e, h, g, "check", "--ready"))
	t.Logf("imdsguard check --ready, daemon stopped (rules kept):\n%s%s", r.Stdout, r.Stderr)
	if r.Err == nil || strings.Count(r.Stdout, "FAIL  ") != 1 {
		t.Errorf("check --ready with the daemon stopped: %v, want exactly one FAIL\n%s", r.Err, r.Stdout)
	}
	wantLines(t, "check --ready", r.Stdout, "PASS  redirect rules installed", "PASS  landing addresses on lo",
		"FAIL  imdsguard answers metadata requests through the redirect",
		"IPv4: OPTIONS to 169.254.169.254:80: connection refused: the rules send it to imdsguard's port and nothing listens there",
		"IPv6: OPTIONS to [fd00:ec2::254]:80: connection refused", "fix: systemctl start imdsguard")
	r = e.Run(guardCmd(e, h, g, "check"))
	t.Logf("imdsguard check, daemon stopped (rules kept):\n%s", r.Stdout)
	wantLines(t, "check", r.Stdout, "PASS  redirect rules installed", "FAIL  imdsguard answers on its port",
		"FAIL  imdsguard answers metadata requests through the redirect", "PASS  IMDS itself rejects", "FAIL  an IMDSv1 request through the redirect")

	if r := e.Run(h.Rules(g, "remove")); r.Err != nil {
		t.Fatalf("rules remove: %v", r)
	}
	r = e.Run(guardCmd(e, h, g, "check", "--ready"))
	t.Logf("imdsguard check --ready, rules removed:\n%s", r.Stdout)
	if r.Err == nil {
		t.Errorf("check --ready without rules passed:\n%s", r.Stdout)
	}
	wantLines(t, "check --ready", r.Stdout, "FAIL  redirect rules installed", "FAIL  landing addresses on lo",
		"ipv4 169.254.254.169/32: MISSING", "FAIL  imdsguard answers metadata requests through the redirect",
		"not sent: the redirect rules are not complete")

	// Every OPTIONS was imdsguard's to answer: IMDS saw none.
	for _, req := range bothAEMM(h) {
		if req.Method == "OPTIONS" {
			t.Errorf("IMDS (AEMM) saw %+v", req)
		}
	}
}

// wantLines wants out (of what) to hold each of want.
func wantLines(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s output lacks %q", what, w)
		}
	}
}
