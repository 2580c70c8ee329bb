package config

import (
	"errors"
	"net"
	"path/filepath"
	"strconv"

	"github.com/imdsguard/imdsguard/internal/config/field"
)

// Validate reports every invalid field of c as *field.Error values with
// their full path ("tokens.hop_limit.host"), joined with errors.Join.
func (c *Config) Validate() error {
	errs := []error{c.validateOwn()}
	for _, s := range []struct {
		name string
		err  error
	}{
		{"upstream", c.Upstream.Validate()},
		{"redirect", c.Redirect.Validate()},
		{"tokens", c.Tokens.Validate()},
		{"policy", c.Policy.Validate()},
		{"runtimes", c.Runtimes.Validate()},
		{"audit", c.Audit.Validate()},
		{"cache", c.Cache.Validate()},
	} {
		errs = append(errs, field.Prefix(s.name, s.err))
	}
	return errors.Join(errs...)
}

// validateOwn checks the small sections that belong to no other package.
func (c *Config) validateOwn() error {
	var errs []error
	if c.Version == 0 {
		errs = append(errs, field.Errorf("version", "missing: the file must start with version: %d", Version))
	} else if c.Version != Version {
		errs = append(errs, field.Errorf("version", "version %d is not supported: write version: %d", c.Version, Version))
	}
	if c.Listen.Port < 1 || c.Listen.Port > 65535 {
		errs = append(errs, field.Errorf("listen.port", "%d is not a TCP port (1..65535)", c.Listen.Port))
	}
	if c.ForwardedHeaders != ForwardedReject && c.ForwardedHeaders != ForwardedStrip {
		errs = append(errs, field.Errorf("forwarded_headers", "%q: write reject (403, the default) or strip", c.ForwardedHeaders))
	}
	if err := checkHostPort(c.Metrics.Listen); c.Metrics.Listen != "" && err != nil {
		errs = append(errs, field.Errorf("metrics.listen", "%q: %v (e.g. 127.0.0.1:9989, or \"\" for off)", c.Metrics.Listen, err))
	}
	if !filepath.IsAbs(c.Admin.Socket) {
		errs = append(errs, field.Errorf("admin.socket", "%q must be an absolute path", c.Admin.Socket))
	}
	return errors.Join(errs...)
}

func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return errors.New("the port is not a TCP port")
	}
	if host == "" {
		return errors.New("give the address to listen on; an empty host means every interface")
	}
	return nil
}
