// Package testbed is the harness of the end-to-end tests: it finds the
// repository and its binaries, starts amazon-ec2-metadata-mock (AEMM), the
// fake upstream and imdsguard itself as child processes
// (in this network namespace or in one a test made), always waits for them,
// runs the real IMDS clients against an endpoint, and speaks raw HTTP/1.1
// over a socket for requests that client libraries would clean up. For the
// systemd unit it builds scratch roots for systemd-analyze (AnalyzeRoot) and
// boots systemd as PID 1 in namespaces of its own, where the unit starts for
// real (Env.StartBoot, Boot). For load and fault tests it runs closed-loop
// keep-alive loads (RunLoad), crowds of idle and slow-header connections
// (StartHold) and clients that record every request's outcome (StartProbe),
// all able to dial inside a namespace (DialerIn), and reads a daemon's
// goroutines, fds and memory (ReadDaemonCounts, PSSKB). Host.StartCluster
// (kube*.go) runs a real single-node Kubernetes cluster whose node is a
// Host's host namespace: etcd, the control plane and the kubelet on
// containerd's CRI, driven with kubectl.
//
// Every wait has a deadline; every process started here is stopped with
// SIGTERM (then SIGKILL) and reaped when the test ends, and its output is
// shown when the test fails.
package testbed
