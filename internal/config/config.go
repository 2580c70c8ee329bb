// Package config reads imdsguard's configuration file (YAML;
// docs/configuration.md shows it whole) strictly: a version field, unknown
// fields refused, every value validated by the package that owns its
// section, and every problem reported as file:line:column, the field, and
// what is wrong. Every field has a safe default, so an absent file means
// the defaults.
package config

import (
	"github.com/imdsguard/imdsguard/internal/audit"
	"github.com/imdsguard/imdsguard/internal/cache"
	"github.com/imdsguard/imdsguard/internal/redirect"
	"github.com/imdsguard/imdsguard/internal/roles"
	"github.com/imdsguard/imdsguard/internal/token"
	"github.com/imdsguard/imdsguard/internal/upstream"
	"github.com/imdsguard/imdsguard/internal/workload"
	"github.com/imdsguard/imdsguard/policy"
)

// DefaultPath is where the daemon looks when --config is not given.
const DefaultPath = "/etc/imdsguard/imdsguard.yaml"

// Version is the only configuration format version.
const Version = 1

// Config is the whole configuration file.
type Config struct {
	Version          int             `yaml:"version"`
	Listen           Listen          `yaml:"listen"`
	Upstream         upstream.Config `yaml:"upstream"`
	Redirect         redirect.Config `yaml:"redirect"`
	ForwardedHeaders string          `yaml:"forwarded_headers"`
	Tokens           token.Config    `yaml:"tokens"`
	Metrics          Metrics         `yaml:"metrics"`
	Admin            Admin           `yaml:"admin"`
	Policy           policy.Config   `yaml:"policy"`
	Runtimes         workload.Config `yaml:"runtimes"`
	Audit            audit.Config    `yaml:"audit"`
	Cache            cache.Config    `yaml:"cache"`
	Roles            roles.Config    `yaml:"roles"`

	// File is where the configuration was read from ("" for the defaults).
	File string `yaml:"-"`
}

// Listen is the `listen:` section.
type Listen struct {
	Port int `yaml:"port"` // the redirect target port
	// LocalRedirectPort is the port of the local redirect listener, 0 =
	// off: where a Cilium Local Redirect Policy sends pods' metadata
	// connections, which arrive un-NATed from the pod's own address at this
	// node's address (docs/containers.md#cilium). It listens on every
	// address of the families the redirect covers, admits container callers
	// only (proxy.AdmitLocalRedirect), and IMDSGUARD-IN lets only the
	// container interfaces reach it.
	LocalRedirectPort int `yaml:"local_redirect_port"`
}

// Metrics is the `metrics:` section.
type Metrics struct {
	Listen string `yaml:"listen"` // host:port for Prometheus; "" = off
}

// Admin is the `admin:` section.
type Admin struct {
	Socket string `yaml:"socket"` // root-only unix socket `imdsguard audit` asks
}

// Forwarded-header modes.
const (
	ForwardedReject = "reject"
	ForwardedStrip  = "strip"
)

// Default returns the configuration used for every field a file leaves out.
func Default() Config {
	return Config{
		Version:          Version,
		Listen:           Listen{Port: 8989},
		Upstream:         upstream.DefaultConfig(),
		Redirect:         redirect.DefaultConfig(),
		ForwardedHeaders: ForwardedReject,
		Tokens:           token.DefaultConfig(),
		Admin:            Admin{Socket: "/run/imdsguard/admin.sock"},
		Policy:           policy.DefaultConfig(),
		Runtimes:         workload.DefaultConfig(),
		Audit:            audit.DefaultConfig(),
		Cache:            cache.DefaultConfig(),
		Roles:            roles.DefaultConfig(),
	}
}
