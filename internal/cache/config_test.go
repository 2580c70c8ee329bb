package cache

import (
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/internal/config/field"
)

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatal(err)
	}
	dur := func(s string) field.Duration {
		var d field.Duration
		d.UnmarshalText([]byte(s))
		return d
	}
	for _, c := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.MaxEntries = 0 }, "max_entries:"},
		{func(c *Config) { c.MaxEntries = maxEntries + 1 }, "max_entries:"},
		{func(c *Config) { c.MaxBytes = 1000 }, "max_bytes:"},
		{func(c *Config) { c.MaxBytes = 2 << 30 }, "max_bytes:"},
		{func(c *Config) { c.StaleGrace = dur("7h") }, "stale_grace:"},
		{func(c *Config) { c.StaleGrace = dur("a while") }, "stale_grace:"},
	} {
		cfg := DefaultConfig()
		c.edit(&cfg)
		err := cfg.Validate()
		if err == nil || !strings.HasPrefix(err.Error(), c.want) {
			t.Errorf("%+v: Validate() = %v, want a %s error", cfg, err, c.want)
		}
	}
	cfg := DefaultConfig()
	cfg.StaleGrace = dur("0s")
	if err := cfg.Validate(); err != nil {
		t.Errorf("stale_grace 0 (never stale): %v", err)
	}
}
