package containerd

import (
	"testing"

	"google.golang.org/protobuf/types/known/anypb"
)

// The sandbox metadata extension as containerd's CRI plugin writes it
// (typeurl JSON of its versioned sandbox Metadata; 1.6 and 2.x alike).
func TestSandboxAnnotations(t *testing.T) {
	const ext = `{"Version":"v1","Metadata":{"ID":"5e1f","Name":"api-1_payments_u-2_0","Config":{"metadata":{"name":"api-1","uid":"u-2","namespace":"payments"},` +
		`"hostname":"api-1","labels":{"app":"api"},"annotations":{"iam.amazonaws.com/role":"payments-api","kubernetes.io/config.seen":"2024-01-01T00:00:00Z"},` +
		`"linux":{}},"NetNSPath":"/var/run/netns/cni-1","IP":"10.0.0.5","RuntimeHandler":""}}`
	for _, c := range []struct {
		name string
		ext  *anypb.Any
		want map[string]string
	}{
		{"containerd", &anypb.Any{TypeUrl: "github.com/containerd/cri/pkg/store/sandbox/Metadata", Value: []byte(ext)},
			map[string]string{"iam.amazonaws.com/role": "payments-api", "kubernetes.io/config.seen": "2024-01-01T00:00:00Z"}},
		{"none", nil, map[string]string{}},
		{"garbage", &anypb.Any{Value: []byte("{")}, map[string]string{}},
		{"no annotations", &anypb.Any{Value: []byte(`{"Version":"v1","Metadata":{"Config":{}}}`)}, map[string]string{}},
	} {
		got := sandboxAnnotations(c.ext)
		if got == nil || len(got) != len(c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
			continue
		}
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q", c.name, k, got[k], v)
			}
		}
	}
}
