package audit

import (
	"time"

	"github.com/imdsguard/imdsguard/internal/config/field"
)

// Config is the `audit:` section of the configuration file.
type Config struct {
	// SummaryInterval is how often routine events (allowed IMDSv2 reads of
	// non-credential paths, token requests) are written as one summary line
	// per caller and request with a count; 0 writes every event on its own
	// line. Events that matter are always written on their own (Matters).
	SummaryInterval field.Duration `yaml:"summary_interval"`
}

// DefaultConfig summarizes routine events every minute.
func DefaultConfig() Config {
	return Config{SummaryInterval: field.Duration{Duration: time.Minute}}
}

// Validate reports an invalid field, with paths relative to the section.
func (c Config) Validate() error {
	return c.SummaryInterval.Check("summary_interval", 0, time.Hour)
}
