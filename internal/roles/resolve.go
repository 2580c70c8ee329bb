package roles

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/imdsguard/imdsguard/internal/workload"
)

// The pod annotations kube2iam and kiam read, honoured as they do.
const (
	AnnotationRole        = "iam.amazonaws.com/role"
	AnnotationExternalID  = "iam.amazonaws.com/external-id"
	AnnotationSessionName = "iam.amazonaws.com/session-name"
)

// EKS Pod Identity's session tag keys, for roles.session_tags.
const (
	TagNamespace = "kubernetes-namespace"
	TagPodName   = "kubernetes-pod-name"
	TagPodUID    = "kubernetes-pod-uid"
)

// Subject is who a role is resolved for: the applying policy rule and
// what is known of the caller.
type Subject struct {
	Rule     string // the applying rule's name ("" for the default)
	RuleRole string // its role: as written ("" for none)
	Workload *workload.Workload
	UIDKnown bool // a host process's uid, as the kernel attests it
	UID      uint32
	// Container is a caller in another network namespace; Source its
	// address (what names its session when its runtime did not answer).
	Container bool
	Source    netip.Addr
}

// Assignment is the role a subject gets, or why it gets none.
type Assignment struct {
	Session Session // Session.RoleARN "" when there is no role
	// Source says where the role came from: "rule NAME" or "annotation".
	Source string
	// Reason says why the subject has this role, or why none: one
	// sentence for the audit log and `policy explain`.
	Reason string
	// Broken is set when a role was meant but cannot be used (a rule's
	// role that does not expand): the caller is then refused credentials,
	// never given the node's.
	Broken bool
	// Refused is set when a pod asks for a role (its annotation) that it
	// may not take: its namespace is not in roles.namespaces, the role is
	// not among its globs, or the annotation does not parse. It gets no
	// role, and no credentials at all: a pod that asked for a narrow role
	// must not fall back on the node's (kube2iam refuses it too).
	Refused bool
}

// HasRole reports whether the subject is served a role of its own (or,
// when Broken or Refused, refused credentials altogether).
func (a *Assignment) HasRole() bool { return a.Session.RoleARN != "" || a.Broken || a.Refused }

// Resolver resolves roles under one `roles:` configuration. It is
// immutable; a reload makes a new one.
type Resolver struct {
	base       string
	namespaces map[string][]string
	tags       bool
}

// NewResolver returns the Resolver of a validated configuration.
func NewResolver(c Config) *Resolver {
	return &Resolver{base: c.BaseARN, namespaces: c.Namespaces, tags: c.SessionTags}
}

// TakesAnnotations reports whether some namespace's pods may take a role
// from their annotations (roles.namespaces is not empty).
func (r *Resolver) TakesAnnotations() bool { return r != nil && len(r.namespaces) > 0 }

// Resolve says which role s gets: the rule's role first, else the pod's
// kube2iam annotation when its namespace may take that role, else none.
func (r *Resolver) Resolve(s Subject) Assignment {
	if s.RuleRole != "" {
		return r.fromRule(s)
	}
	w := s.Workload
	if w == nil || w.Pod == nil {
		return Assignment{Reason: "no role: rule " + ruleName(s.Rule) + " gives none, and the caller is not a pod"}
	}
	ref := w.Pod.Annotations[AnnotationRole]
	if ref == "" {
		return Assignment{Reason: "no role: rule " + ruleName(s.Rule) + " gives none, and pod " + podName(w.Pod) + " has no " + AnnotationRole + " annotation"}
	}
	return r.fromAnnotation(w.Pod, ref)
}

func (r *Resolver) fromRule(s Subject) Assignment {
	a := Assignment{Source: "rule " + s.Rule}
	arn, err := Expand(r.base, s.RuleRole)
	if err != nil {
		a.Broken, a.Reason = true, fmt.Sprintf("rule %s's role %q cannot be used: %v", s.Rule, s.RuleRole, err)
		return a
	}
	a.Session = r.session(arn, s, "", "")
	a.Reason = "role " + arn.Full + " from rule " + s.Rule
	return a
}

func (r *Resolver) fromAnnotation(pod *workload.Pod, ref string) Assignment {
	a := Assignment{Source: "annotation"}
	who := "pod " + podName(pod)
	globs, listed := r.namespaces[pod.Namespace]
	if !listed {
		a.Refused = true
		a.Reason = fmt.Sprintf("no role: %s asks for %q (%s), and namespace %s is not in roles.namespaces", who, ref, AnnotationRole, pod.Namespace)
		return a
	}
	arn, err := Expand(r.base, ref)
	if err != nil {
		a.Refused = true
		a.Reason = fmt.Sprintf("no role: %s's %s annotation %q: %v", who, AnnotationRole, ref, err)
		return a
	}
	matched, ok := r.allowed(globs, arn)
	if !ok {
		a.Refused = true
		a.Reason = fmt.Sprintf("no role: %s asks for %s, which roles.namespaces.%s (%s) does not allow", who, arn.Full, pod.Namespace, strings.Join(globs, ", "))
		return a
	}
	s := Subject{Workload: &workload.Workload{Pod: pod}}
	a.Session = r.session(arn, s, pod.Annotations[AnnotationSessionName], pod.Annotations[AnnotationExternalID])
	a.Reason = fmt.Sprintf("role %s from %s's %s annotation, allowed by roles.namespaces.%s %q", arn.Full, who, AnnotationRole, pod.Namespace, matched)
	return a
}

// allowed returns the glob of the namespace's list that admits arn: a
// role under the base ARN is matched by its name below it, any other by
// its full ARN.
func (r *Resolver) allowed(globs []string, arn ARN) (string, bool) {
	subject := arn.Full
	if r.base != "" && strings.HasPrefix(arn.Full, r.base) {
		subject = strings.TrimPrefix(arn.Full, r.base)
	}
	for _, g := range globs {
		if Glob(g, subject) {
			return g, true
		}
	}
	return "", false
}

// session is the STS session of arn for s; name and externalID are the
// annotations' ("" for none).
func (r *Resolver) session(arn ARN, s Subject, name, externalID string) Session {
	if name == "" {
		name = SessionNameOf(s)
	}
	out := Session{RoleARN: arn.Full, RoleName: arn.Name, Name: CleanSessionName(name), ExternalID: externalID}
	if w := s.Workload; r.tags && w != nil && w.Pod != nil {
		out.Tags = []Tag{{TagNamespace, w.Pod.Namespace}, {TagPodName, w.Pod.Name}}
		if w.Pod.UID != "" {
			out.Tags = append(out.Tags, Tag{TagPodUID, w.Pod.UID})
		}
	}
	return out
}

// SessionNameOf is the session name of a subject before cleaning:
// NAMESPACE.POD for a pod's container, the container's name for another
// container, container.ADDRESS for a container its runtime said nothing
// of, host.uid-N for a host process (host when its uid is unknown).
func SessionNameOf(s Subject) string {
	switch w := s.Workload; {
	case w != nil && w.Pod != nil:
		return w.Pod.Namespace + "." + w.Pod.Name
	case w != nil && w.Name != "":
		return w.Name
	case s.Container && s.Source.IsValid():
		return "container." + s.Source.Unmap().String()
	case s.Container:
		return "container"
	case s.UIDKnown:
		return "host.uid-" + strconv.FormatUint(uint64(s.UID), 10)
	}
	return "host"
}

func ruleName(r string) string {
	if r == "" {
		return "(default)"
	}
	return r
}

func podName(p *workload.Pod) string { return p.Namespace + "/" + p.Name }

// Glob matches s against pat, where "*" is any run of characters ("/" and
// ":" included) and every other byte matches itself.
func Glob(pat, s string) bool {
	px, sx := 0, 0
	nextPx, nextSx := -1, -1
	for px < len(pat) || sx < len(s) {
		if px < len(pat) {
			if pat[px] == '*' {
				nextPx, nextSx = px, sx+1
				px++
				continue
			}
			if sx < len(s) && pat[px] == s[sx] {
				px++
				sx++
				continue
			}
		}
		if nextPx >= 0 && nextSx <= len(s) {
			px, sx = nextPx, nextSx
			continue
		}
		return false
	}
	return true
}
