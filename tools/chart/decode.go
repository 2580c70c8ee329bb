package chart

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/imdsguard/imdsguard/internal/config"
)

// ConfigKey is the ConfigMap's key the daemon reads as
// /etc/imdsguard/imdsguard.yaml.
const ConfigKey = "imdsguard.yaml"

// Objects is what the chart rendered, each decoded strictly into its API
// type: an unknown or misspelt field is an error, as `kubectl apply
// --validate=strict` would make it. Objects the values did not ask for are
// nil.
type Objects struct {
	Kinds          []string // in the order helm printed them
	ServiceAccount *corev1.ServiceAccount
	ConfigMap      *corev1.ConfigMap
	DaemonSet      *appsv1.DaemonSet
	Service        *corev1.Service
	ServiceMonitor *ServiceMonitor
	// LocalRedirectPolicies are Cilium's CiliumLocalRedirectPolicy
	// objects, in the order printed: one a family.
	LocalRedirectPolicies []*LocalRedirectPolicy
}

// ServiceMonitor is the part of prometheus-operator's monitoring.coreos.com/v1
// ServiceMonitor that the chart writes, under the API's field names. Strict
// decoding into it refuses any other field: one the chart starts to write
// must be added here, and so checked against the API by whoever adds it.
type ServiceMonitor struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              ServiceMonitorSpec `json:"spec"`
}

// ServiceMonitorSpec is the spec's part the chart writes.
type ServiceMonitorSpec struct {
	Selector          metav1.LabelSelector `json:"selector"`
	NamespaceSelector NamespaceSelector    `json:"namespaceSelector"`
	Endpoints         []Endpoint           `json:"endpoints"`
}

// NamespaceSelector says where the selected Services are.
type NamespaceSelector struct {
	MatchNames []string `json:"matchNames,omitempty"`
}

// Endpoint is one scrape target: a named port of the selected Services.
type Endpoint struct {
	Port          string `json:"port"`
	Path          string `json:"path,omitempty"`
	Interval      string `json:"interval,omitempty"`
	ScrapeTimeout string `json:"scrapeTimeout,omitempty"`
}

// LocalRedirectPolicy is the part of Cilium's CiliumLocalRedirectPolicy
// (cilium.io/v2, the CRD's openAPIV3Schema) that the chart and
// packaging/kubernetes/cilium-lrp.yaml write, under the CRD's field names.
// As with ServiceMonitor, strict decoding refuses any other field, so a
// misspelt or misplaced one fails.
type LocalRedirectPolicy struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata"`
	Spec              LocalRedirectPolicySpec `json:"spec"`
}

// LocalRedirectPolicySpec is the spec's part written.
type LocalRedirectPolicySpec struct {
	Description             string      `json:"description,omitempty"`
	RedirectFrontend        LRPFrontend `json:"redirectFrontend"`
	RedirectBackend         LRPBackend  `json:"redirectBackend"`
	SkipRedirectFromBackend bool        `json:"skipRedirectFromBackend,omitempty"`
}

// LRPFrontend is what is redirected: an address and its ports (the CRD's
// serviceMatcher is not used).
type LRPFrontend struct {
	AddressMatcher *LRPAddressMatcher `json:"addressMatcher,omitempty"`
}

// LRPAddressMatcher is an IP address and ports.
type LRPAddressMatcher struct {
	IP      string    `json:"ip"`
	ToPorts []LRPPort `json:"toPorts"`
}

// LRPBackend is where to: the node's local pods the selector picks, at
// these ports.
type LRPBackend struct {
	LocalEndpointSelector metav1.LabelSelector `json:"localEndpointSelector"`
	ToPorts               []LRPPort            `json:"toPorts"`
}

// LRPPort is a port as the CRD writes it: a number in a string.
type LRPPort struct {
	Port     string `json:"port"`
	Protocol string `json:"protocol,omitempty"`
	Name     string `json:"name,omitempty"`
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// Decode reads helm's output (documents separated by ---, each led by a
// "# Source:" comment), or a manifest of the same kinds. Any kind the chart
// is not meant to make, a Role or a Namespace say, is an error; so is a
// kind twice, but for local redirect policies, which only may not share a
// name.
func Decode(rendered string) (*Objects, error) {
	o := &Objects{}
	for i, doc := range docSep.Split(rendered, -1) {
		if isEmpty(doc) {
			continue
		}
		if err := o.add([]byte(doc)); err != nil {
			return nil, fmt.Errorf("rendered document %d: %w", i, err)
		}
	}
	return o, nil
}

// isEmpty: only blank and comment lines.
func isEmpty(doc string) bool {
	for _, l := range strings.Split(doc, "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			return false
		}
	}
	return true
}

func (o *Objects) add(doc []byte) error {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return err
	}
	obj, err := o.slot(tm)
	if err != nil {
		return err
	}
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return fmt.Errorf("%s: %w", tm.Kind, err)
	}
	if p, ok := obj.(*LocalRedirectPolicy); ok {
		for _, q := range o.LocalRedirectPolicies {
			if q.Name == p.Name {
				return fmt.Errorf("a second %s %s", tm.Kind, p.Name)
			}
		}
		o.LocalRedirectPolicies = append(o.LocalRedirectPolicies, p)
	}
	o.Kinds = append(o.Kinds, tm.Kind)
	return nil
}

// slot allocates the field that an object of type tm decodes into.
func (o *Objects) slot(tm metav1.TypeMeta) (any, error) {
	var obj any
	var taken bool
	switch tm.APIVersion + " " + tm.Kind {
	case "v1 ServiceAccount":
		obj, taken = fresh(&o.ServiceAccount)
	case "v1 ConfigMap":
		obj, taken = fresh(&o.ConfigMap)
	case "apps/v1 DaemonSet":
		obj, taken = fresh(&o.DaemonSet)
	case "v1 Service":
		obj, taken = fresh(&o.Service)
	case "monitoring.coreos.com/v1 ServiceMonitor":
		obj, taken = fresh(&o.ServiceMonitor)
	case "cilium.io/v2 CiliumLocalRedirectPolicy":
		obj = new(LocalRedirectPolicy) // add appends it, once decoded
	default:
		return nil, fmt.Errorf("unexpected %s %s", tm.APIVersion, tm.Kind)
	}
	if taken {
		return nil, fmt.Errorf("a second %s", tm.Kind)
	}
	return obj, nil
}

// fresh points *p at a new T and reports whether it held one already.
func fresh[T any](p **T) (*T, bool) {
	taken := *p != nil
	*p = new(T)
	return *p, taken
}

// Config reads the ConfigMap's imdsguard.yaml with the daemon's own loader
// (strict, every field validated), as `imdsguard policy check` would: helm
// renders any tree it is given under `config`, so this is where a
// configuration the daemon would refuse is caught before it is installed.
func (o *Objects) Config() (*config.Config, error) {
	if o.ConfigMap == nil {
		return nil, fmt.Errorf("no ConfigMap rendered")
	}
	data, ok := o.ConfigMap.Data[ConfigKey]
	if !ok {
		return nil, fmt.Errorf("ConfigMap %s: no %s", o.ConfigMap.Name, ConfigKey)
	}
	name := fmt.Sprintf("ConfigMap %s/%s %s", o.ConfigMap.Namespace, o.ConfigMap.Name, ConfigKey)
	return config.Read(bytes.NewReader([]byte(data)), name)
}
