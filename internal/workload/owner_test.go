package workload

import (
	"slices"
	"testing"
)

func TestOwners(t *testing.T) {
	const id = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	all := []string{Docker, Containerd, CRIO}
	tests := []struct {
		cgroup string
		want   []string
		ns     string
	}{
		{"/docker/" + id, []string{Docker}, ""},
		{"/system.slice/docker-" + id + ".scope", []string{Docker}, ""},
		{"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-" + id + ".scope", []string{Containerd}, "k8s.io"},
		{"/kubepods.slice/kubepods-pod1.slice/crio-" + id + ".scope", []string{CRIO}, ""},
		{"/kubepods/besteffort/pod1234/" + id, []string{Containerd, CRIO, Docker}, "k8s.io"},
		{"/k8s.io/" + id, []string{Containerd, Docker, CRIO}, "k8s.io"},
		{"/default/" + id, []string{Containerd, Docker, CRIO}, "default"},
		{"/machine.slice/libpod-" + id + ".scope", all, ""},
		{"/user.slice/user-1000.slice", all, ""},
		{"", all, ""},
	}
	for _, tt := range tests {
		if got := Owners(tt.cgroup, id); !slices.Equal(got, tt.want) {
			t.Errorf("Owners(%s) = %v, want %v", tt.cgroup, got, tt.want)
		}
		if got := ContainerdNamespace(tt.cgroup, id); got != tt.ns && tt.want[0] == Containerd {
			t.Errorf("ContainerdNamespace(%s) = %q, want %q", tt.cgroup, got, tt.ns)
		}
	}
}
