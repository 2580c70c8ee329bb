package identity

import "testing"

const (
	id1 = "3f4b1a2c9d8e7f6a5b4c3d2e1f0a9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a"
	id2 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
)

func TestParseCgroup(t *testing.T) {
	cases := []struct {
		name, in, path, id string
	}{
		{"v2 host service", "0::/system.slice/ssh.service\n", "/system.slice/ssh.service", ""},
		{"v2 user session", "0::/user.slice/user-1000.slice/session-3.scope\n", "/user.slice/user-1000.slice/session-3.scope", ""},
		{"v2 docker, systemd driver", "0::/system.slice/docker-" + id1 + ".scope\n", "/system.slice/docker-" + id1 + ".scope", id1},
		{"v2 docker, cgroupfs driver", "0::/docker/" + id1 + "\n", "/docker/" + id1, id1},
		{"v2 containerd CRI, kubepods systemd", "0::/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1c2d.slice/cri-containerd-" + id1 + ".scope\n",
			"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod1c2d.slice/cri-containerd-" + id1 + ".scope", id1},
		{"v2 cri-o", "0::/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9f.slice/crio-" + id1 + ".scope\n",
			"/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod9f.slice/crio-" + id1 + ".scope", id1},
		{"v2 cri-o conmon is not the container", "0::/machine.slice/crio-conmon-" + id1 + ".scope\n", "/machine.slice/crio-conmon-" + id1 + ".scope", ""},
		{"v2 podman", "0::/machine.slice/libpod-" + id1 + ".scope/container\n", "/machine.slice/libpod-" + id1 + ".scope/container", id1},
		{"v2 podman conmon", "0::/machine.slice/libpod-conmon-" + id1 + ".scope\n", "/machine.slice/libpod-conmon-" + id1 + ".scope", ""},
		{"v1 docker", "12:pids:/docker/" + id1 + "\n11:memory:/docker/" + id1 + "\n1:name=systemd:/docker/" + id1 + "\n",
			"/docker/" + id1, id1},
		{"v1 kubepods cgroupfs", "10:cpu,cpuacct:/kubepods/burstable/pod7e3c6f5a-1b2c-4d5e-8f90-a1b2c3d4e5f6/" + id1 + "\n",
			"/kubepods/burstable/pod7e3c6f5a-1b2c-4d5e-8f90-a1b2c3d4e5f6/" + id1, id1},
		{"hybrid: unified line wins the path", "12:pids:/system.slice/cron.service\n0::/system.slice/cron.service\n", "/system.slice/cron.service", ""},
		{"nested docker: innermost id", "0::/docker/" + id1 + "/docker/" + id2 + "\n", "/docker/" + id1 + "/docker/" + id2, id2},
		{"v1 only in one controller", "5:devices:/user.slice\n4:memory:/docker/" + id2 + "\n", "/user.slice", id2},
		{"63 hex digits is not an id", "0::/docker/" + id1[:63] + "\n", "/docker/" + id1[:63], ""},
		{"upper-case hex is not an id", "0::/docker/3F4B1A2C9D8E7F6A5B4C3D2E1F0A9B8C7D6E5F4A3B2C1D0E9F8A7B6C5D4E3F2A\n",
			"/docker/3F4B1A2C9D8E7F6A5B4C3D2E1F0A9B8C7D6E5F4A3B2C1D0E9F8A7B6C5D4E3F2A", ""},
		{"empty", "", "", ""},
		{"garbage", "nonsense\n", "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path, id := parseCgroup([]byte(c.in))
			if path != c.path || id != c.id {
				t.Fatalf("parseCgroup = %q, %q; want %q, %q", path, id, c.path, c.id)
			}
		})
	}
}
