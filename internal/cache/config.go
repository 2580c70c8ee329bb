package cache

import (
	"errors"
	"time"

	"github.com/imdsguard/imdsguard/internal/config/field"
)

// Config is the `cache:` section of the configuration file.
type Config struct {
	Enabled    bool           `yaml:"enabled"`
	MaxEntries int            `yaml:"max_entries"` // paths held at most
	MaxBytes   int64          `yaml:"max_bytes"`   // bytes held at most, bodies and headers
	StaleGrace field.Duration `yaml:"stale_grace"` // how long past its lifetime an answer may replace an error
}

// Bounds of the section's values.
const (
	minEntries = 16
	maxEntries = 1 << 20
	minBytes   = 1 << 20 // room for several of the largest answers
	maxBytes   = 1 << 30
	maxGrace   = 6 * time.Hour
)

// DefaultConfig is the cache section used when the file does not set it:
// on, room for far more paths than an instance has, and five minutes of
// grace.
func DefaultConfig() Config {
	return Config{
		Enabled:    true,
		MaxEntries: 4096,
		MaxBytes:   16 << 20,
		StaleGrace: field.Duration{Duration: 5 * time.Minute},
	}
}

// Validate reports every invalid field, with paths relative to the section.
func (c Config) Validate() error {
	var errs []error
	if c.MaxEntries < minEntries || c.MaxEntries > maxEntries {
		errs = append(errs, field.Errorf("max_entries", "%d is out of range (%d..%d)", c.MaxEntries, minEntries, maxEntries))
	}
	if c.MaxBytes < minBytes || c.MaxBytes > maxBytes {
		errs = append(errs, field.Errorf("max_bytes", "%d is out of range (%d..%d bytes)", c.MaxBytes, minBytes, maxBytes))
	}
	if err := c.StaleGrace.Check("stale_grace", 0, maxGrace); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
