package workload

import (
	"errors"
	"path/filepath"

	"github.com/imdsguard/imdsguard/internal/config/field"
)

// Config is the `runtimes:` section: where each runtime's API socket is.
// An empty path turns that runtime off; a socket that is not there (the
// runtime is not installed, or not running) gives its containers no
// runtime fields, with the reason in their audit events.
type Config struct {
	Docker     string `yaml:"docker"`
	Containerd string `yaml:"containerd"`
	CRIO       string `yaml:"crio"`
}

// DefaultConfig returns the sockets where the runtimes put them.
func DefaultConfig() Config {
	return Config{
		Docker:     "/run/docker.sock",
		Containerd: "/run/containerd/containerd.sock",
		CRIO:       "/run/crio/crio.sock",
	}
}

// Validate checks that every socket given is an absolute path.
func (c Config) Validate() error {
	var errs []error
	for _, s := range []struct{ key, path string }{{"docker", c.Docker}, {"containerd", c.Containerd}, {"crio", c.CRIO}} {
		if s.path != "" && !filepath.IsAbs(s.path) {
			errs = append(errs, field.Errorf(s.key, "%q must be an absolute path to the runtime's API socket, or \"\" to turn it off", s.path))
		}
	}
	return errors.Join(errs...)
}
