package config

import (
	"errors"
	"net"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/imdsguard/imdsguard/internal/config/field"
	"github.com/imdsguard/imdsguard/internal/roles"
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
		{"roles", c.Roles.Validate()},
	} {
		errs = append(errs, field.Prefix(s.name, s.err))
	}
	errs = append(errs, c.validateRuleRoles()...)
	return errors.Join(errs...)
}

// validateRuleRoles checks the policy rules' role: against the roles
// section: a short name needs roles.base_arn.
func (c *Config) validateRuleRoles() []error {
	var errs []error
	for i, r := range c.Policy.Rules {
		if r.Role == "" || roles.IsARN(r.Role) || roles.CheckRef(r.Role) != nil || c.Roles.BaseARN != "" {
			continue
		}
		errs = append(errs, field.Errorf(field.Join(field.Index("policy.rules", i), "role"),
			"%q is a short name and roles.base_arn is not set: write the full ARN, or set roles.base_arn", r.Role))
	}
	return errs
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
	errs = append(errs, c.validateLocalRedirect()...)
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

// validateLocalRedirect checks listen.local_redirect_port against the
// sections it leans on: its listener admits callers routed through the
// redirect's container interfaces, and IMDSGUARD-IN (redirect rules) keeps
// everything else from reaching it in the kernel.
func (c *Config) validateLocalRedirect() []error {
	const path = "listen.local_redirect_port"
	p := c.Listen.LocalRedirectPort
	switch {
	case p == 0:
		return nil
	case p < 0 || p > 65535:
		return []error{field.Errorf(path, "%d is not a TCP port (1..65535, or 0 for off)", p)}
	case p == c.Listen.Port:
		return []error{field.Errorf(path, "%d is listen.port: the local redirect listener needs a port of its own", p)}
	case !c.Redirect.IPv4 && !c.Redirect.IPv6:
		return []error{field.Errorf(path, "needs redirect.ipv4 or redirect.ipv6: the container interfaces it admits callers from, "+
			"and the filter rule that closes it to the network, are the redirect's")}
	case slices.Contains(c.Redirect.ContainerInterfaces, "+"):
		return []error{field.Errorf(path, "redirect.container_interfaces has \"+\" (every interface but lo), which takes in the "+
			"node's network interfaces too: list the pod interfaces instead (Cilium: \"lxc+\", \"cilium_host\"; docs/containers.md#cilium)")}
	}
	return nil
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
