package metrics

import (
	"strings"
	"sync"

	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/identity"
)

// MaxV1Workloads bounds the series of imdsguard_imdsv1_requests_by_workload_total:
// the first workloads seen get a series each, later ones are counted as
// "other" of their kind. A node rarely has more IMDSv1 users than this;
// across a fleet the same workload has the same name on every node, so the
// fleet's series are bounded too.
const MaxV1Workloads = 64

// v1Workloads names the workload of an IMDSv1 request, boundedly.
type v1Workloads struct {
	mu   sync.Mutex
	seen map[[2]string]bool
}

// label returns the kind and workload labels of ev's caller: the
// executable of a host process ("exe"), the pod's namespace and owner of a
// Kubernetes container ("pod": "kube-system/aws-node"), the image without
// its tag of any other container ("image"), "container"/"unknown" when the
// runtime did not answer. Past MaxV1Workloads pairs the workload is "other".
func (v *v1Workloads) label(ev *audit.Event) (kind, name string) {
	kind, name = workloadOf(ev)
	k := [2]string{kind, name}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.seen == nil {
		v.seen = map[[2]string]bool{}
	}
	if !v.seen[k] {
		if len(v.seen) >= MaxV1Workloads {
			return kind, "other"
		}
		v.seen[k] = true
	}
	return kind, name
}

func workloadOf(ev *audit.Event) (kind, name string) {
	c := ev.Caller
	switch w := c.Workload; {
	case w != nil && w.Pod != nil:
		return "pod", w.Pod.Namespace + "/" + PodOwner(w.Pod.Name)
	case w != nil:
		return "image", imageRepo(w.Image)
	case c.Container != "" || c.Class == identity.Container:
		return "container", "unknown"
	case c.Exe != "":
		return "exe", c.Exe
	}
	return "exe", "unknown"
}

// imageRepo drops an image's digest and tag: "registry.example:5000/app:1.2"
// is "registry.example:5000/app" (versions would multiply the series).
func imageRepo(image string) string {
	if i := strings.IndexByte(image, '@'); i >= 0 {
		image = image[:i]
	}
	if i := strings.LastIndexByte(image, ':'); i > strings.LastIndexByte(image, '/') {
		image = image[:i]
	}
	if image == "" {
		return "unknown"
	}
	return image
}

// PodOwner guesses the name of what made a pod from the pod's name, as
// the runtime knows no owner: the random suffix of a DaemonSet's, Job's
// or ReplicaSet's pod ("aws-node-x7k2p" is aws-node), then a Deployment's
// pod-template-hash ("billing-5d9c8b7f6-x2x9z" is billing), or a
// StatefulSet's ordinal ("web-0" is web). Suffixes are recognised by
// Kubernetes' alphabet for generated names (no vowels, no 0, 1, 3), so
// "aws-node" keeps its "node".
func PodOwner(pod string) string {
	name := pod
	if base, suf, ok := cutSuffix(name); ok && len(suf) == 5 && generated(suf) {
		name = base
		if base, suf, ok := cutSuffix(name); ok && len(suf) >= 6 && len(suf) <= 10 && generated(suf) {
			name = base
		}
	} else if ok && digits(suf) {
		name = base
	}
	return name
}

func cutSuffix(s string) (base, suffix string, ok bool) {
	i := strings.LastIndexByte(s, '-')
	if i <= 0 {
		return s, "", false
	}
	return s[:i], s[i+1:], true
}

// generated reports whether s is written in the alphabet of Kubernetes'
// generated names (k8s.io/apimachinery/pkg/util/rand.SafeEncodeString).
func generated(s string) bool {
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune("bcdfghjklmnpqrstvwxz2456789", rune(s[i])) {
			return false
		}
	}
	return s != ""
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
