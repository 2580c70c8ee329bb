package main

import (
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/imdsguard/imdsguard/internal/config"
	"github.com/imdsguard/imdsguard/internal/roles"
	"github.com/imdsguard/imdsguard/internal/workload"
	"github.com/imdsguard/imdsguard/policy"
	"github.com/imdsguard/imdsguard/proxy"
)

type explainFlags struct {
	config    string
	uid       int
	gids      []uint
	source    string
	iface     string
	container bool
	v1        bool
	unknownID bool
	work      workloadFlags
}

// workloadFlags describe what a container's runtime would say about it.
type workloadFlags struct {
	runtime      string
	name         string
	image        string
	labels       []string // k=v
	podNamespace string
	podName      string
	podUID       string
	podLabels    []string // k=v
	podAnnots    []string // k=v: what the kubelet handed the runtime with the sandbox
	hostNetwork  bool
}

func newPolicyExplainCmd() *cobra.Command {
	var f explainFlags
	cmd := &cobra.Command{
		Use:   "explain [--uid N [--gid N]...] [--source IP] [--interface NAME] [--container-name NAME] [--image IMAGE] [--label K=V]... [--pod-namespace NS --pod-name NAME [--pod-label K=V]...] [--host-network] [--v1] METHOD PATH",
		Short: "Show the decision for a request, the rule that made it and why",
		Long: `Decide a request the way the running proxy would, without sending anything:
the canonical path, the caller, the decision, the rule and pattern that made
it, and the reason.

PATH is the request target as a client sends it ("/latest/meta-data/iam/info",
"//latest/meta-data/placement/../iam/", or an absolute http://169.254.169.254/
URL); it goes through the same canonicalization as in the proxy. Without --v1
the request is taken to carry a valid IMDSv2 token. Without --uid the caller's
user is unknown, as for a caller the kernel could not attest. Users and
groups name host callers, sources and interfaces containers: a container
caller (--container, --source or --interface) matches no users or groups
entry (its uid 0 is not the host's root), a host caller no sources or
interfaces entry.

A container as its runtime describes it (--container-name, --image,
--label, and for a pod --pod-namespace, --pod-name, --pod-label) is what the
containers and pods selectors match; it is a container caller unless
--host-network says it shares the host's network namespace (a hostNetwork
pod, a --network=host container), which keeps it a host process for users
and groups. Without these flags the caller's runtime said nothing (not a
container, or the runtime did not answer), and it fits no selector.

The role lines say which IAM role of its own the caller would get (a
rule's role:, else its pod's iam.amazonaws.com/role annotation, given with
--pod-annotation, when roles.namespaces allows it) and why, and how a read
under iam/ is then answered.`,
		Example: `  imdsguard policy explain --config /etc/imdsguard/imdsguard.yaml --uid 33 GET /latest/meta-data/iam/security-credentials/
  imdsguard policy explain --uid 1001 --gid 1001 --gid 998 --v1 GET /latest/meta-data/instance-id
  imdsguard policy explain --source 172.17.0.5 --interface docker0 PUT /latest/api/token
  imdsguard policy explain --container-name web-1 --image registry.example/app:1.2 --label team=payments GET /latest/meta-data/iam/security-credentials/
  imdsguard policy explain --pod-namespace payments --pod-name api-1 --pod-annotation iam.amazonaws.com/role=payments-api GET /latest/meta-data/iam/security-credentials/payments-api
  imdsguard policy explain --uid 0 --host-network --pod-namespace kube-system --pod-name aws-node-x7k2p --container-name aws-node GET /latest/meta-data/iam/info`,
		Args: args(cobra.ExactArgs(2)),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.unknownID = !cmd.Flags().Changed("uid")
			f.container = f.container || cmd.Flags().Changed("source") || f.iface != "" || (f.work.given() && !f.work.hostNetwork)
			return explain(cmd.OutOrStdout(), f, cmd.Flags().Changed("config"), args[0], args[1])
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.config, "config", config.DefaultPath, "configuration file (absent default file: built-in defaults)")
	fl.IntVar(&f.uid, "uid", 0, "the caller's uid (as the kernel attests it)")
	fl.UintSliceVar(&f.gids, "gid", nil, "the caller's primary and supplementary gids (repeat)")
	fl.StringVar(&f.source, "source", "127.0.0.1", "a container caller's address (implies --container: sources name containers only)")
	fl.StringVar(&f.iface, "interface", "", "the ingress interface (implies --container)")
	fl.BoolVar(&f.container, "container", false, "the caller is in a container (another network namespace): users and groups entries do not apply")
	fl.BoolVar(&f.v1, "v1", false, "the request carries no IMDSv2 token")
	w := &f.work
	fl.StringVar(&w.runtime, "runtime", "", "the container's runtime: docker, containerd or cri-o (default docker, containerd for a pod)")
	fl.StringVar(&w.name, "container-name", "", "the container's name as its runtime says it (a pod's container: the kubelet's container name)")
	fl.StringVar(&w.image, "image", "", "the container's image (registry.example/app:1.2)")
	fl.StringArrayVar(&w.labels, "label", nil, "a label of the container, K=V (repeat)")
	fl.StringVar(&w.podNamespace, "pod-namespace", "", "the container's pod's namespace (with --pod-name)")
	fl.StringVar(&w.podName, "pod-name", "", "the container's pod's name (with --pod-namespace)")
	fl.StringVar(&w.podUID, "pod-uid", "", "the container's pod's uid")
	fl.StringArrayVar(&w.podLabels, "pod-label", nil, "a label of the pod, K=V (repeat)")
	fl.StringArrayVar(&w.podAnnots, "pod-annotation", nil, "an annotation of the pod, K=V (repeat): iam.amazonaws.com/role=NAME asks for a role")
	fl.BoolVar(&w.hostNetwork, "host-network", false, "the container shares the host's network namespace (hostNetwork pod, --network=host): a host process for users and groups")
	return cmd
}

func explain(w io.Writer, f explainFlags, explicit bool, method, target string) error {
	cfg, err := config.Load(f.config, !explicit)
	if err != nil {
		return err
	}
	pol, _, err := policy.Compile(cfg.Policy, policy.SystemNames{})
	if err != nil {
		return err
	}
	caller, err := f.caller()
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "caller:   %s\n", describeCaller(caller))
	proxy.Explain(w, pol, caller, f.v1, method, target)
	proxy.ExplainRole(w, roles.NewResolver(cfg.Roles), pol, caller, f.v1, method, target)
	return nil
}

func (f explainFlags) caller() (policy.Caller, error) {
	src, err := netip.ParseAddr(f.source)
	if err != nil {
		return policy.Caller{}, usageError("--source %q: %v", f.source, err)
	}
	c := policy.Caller{UIDKnown: !f.unknownID, UID: uint32(f.uid), Source: src, Interface: f.iface, Container: f.container}
	if f.uid < 0 {
		return c, usageError("--uid %d: not a uid", f.uid)
	}
	for _, g := range f.gids {
		c.GIDs = append(c.GIDs, uint32(g))
	}
	c.Workload, err = f.work.workload()
	return c, err
}

func describeCaller(c policy.Caller) string {
	parts := []string{"uid unknown (matches no users/groups entry)"}
	if c.UIDKnown {
		parts = []string{fmt.Sprintf("uid %d", c.UID)}
	}
	if len(c.GIDs) > 0 {
		parts = append(parts, fmt.Sprintf("gids %v", c.GIDs))
	}
	parts = append(parts, "source "+c.Source.String())
	if c.Interface != "" {
		parts = append(parts, "interface "+c.Interface)
	}
	if c.Container {
		parts = append(parts, "container (users/groups entries do not apply)")
	}
	if w := c.Workload; w != nil {
		parts = append(parts, describeWorkload(w))
	} else {
		parts = append(parts, "no runtime fields (containers/pods selectors do not apply)")
	}
	return strings.Join(parts, ", ")
}

func describeWorkload(w *workload.Workload) string {
	s := fmt.Sprintf("%s container %q", w.Runtime, w.Name)
	if w.Image != "" {
		s += " image " + w.Image
	}
	if l := labelText(w.Labels); l != "" {
		s += " labels " + l
	}
	if w.Pod != nil {
		s += " of pod " + w.Pod.Namespace + "/" + w.Pod.Name
		if l := labelText(w.Pod.Labels); l != "" {
			s += " with labels " + l
		}
	}
	return s
}

// labelText is k=v,... sorted, without the kubelet's own labels (the pod
// says them).
func labelText(labels map[string]string) string {
	var kv []string
	for k, v := range labels {
		if !strings.HasPrefix(k, "io.kubernetes.") {
			kv = append(kv, k+"="+v)
		}
	}
	slices.Sort(kv)
	return strings.Join(kv, ",")
}
