package token

import (
	"errors"
	"path/filepath"

	"github.com/imdsguard/imdsguard/internal/config/field"
)

// Config is the `tokens:` section of the configuration file.
type Config struct {
	KeyFile  string   `yaml:"key_file"`
	HopLimit HopLimit `yaml:"hop_limit"`
}

// HopLimit is the IP TTL / IPv6 hop limit of token answers per caller class,
// with IMDS's meaning: 1 reaches the host itself, 2 one more hop (a container
// behind a bridge).
type HopLimit struct {
	Host      int `yaml:"host"`
	Container int `yaml:"container"`
}

// DefaultConfig is the tokens section used when the file does not set it.
func DefaultConfig() Config {
	return Config{
		KeyFile:  "/var/lib/imdsguard/token.key",
		HopLimit: HopLimit{Host: 1, Container: 2},
	}
}

// Validate reports every invalid field, with paths relative to the section.
func (c Config) Validate() error {
	var errs []error
	if !filepath.IsAbs(c.KeyFile) {
		errs = append(errs, field.Errorf("key_file", "%q must be an absolute path", c.KeyFile))
	}
	for _, h := range []struct {
		path string
		v    int
	}{{"hop_limit.host", c.HopLimit.Host}, {"hop_limit.container", c.HopLimit.Container}} {
		if h.v < 1 || h.v > 64 {
			errs = append(errs, field.Errorf(h.path, "%d is out of range (1..64, as IMDS allows)", h.v))
		}
	}
	return errors.Join(errs...)
}
