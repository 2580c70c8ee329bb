package upstream

import (
	"errors"
	"net/url"
	"time"

	"github.com/imdsguard/imdsguard/internal/config/field"
	"github.com/imdsguard/imdsguard/internal/imds"
)

// Config is the `upstream:` section of the configuration file.
type Config struct {
	URL      string         `yaml:"url"`
	TokenTTL field.Duration `yaml:"token_ttl"`
}

// DefaultConfig is the upstream section used when the file does not set it.
func DefaultConfig() Config {
	return Config{
		URL:      imds.URL,
		TokenTTL: field.Duration{Duration: 6 * time.Hour},
	}
}

// Validate reports every invalid field, with paths relative to the section.
func (c Config) Validate() error {
	var errs []error
	if _, err := parseBase(c.URL); err != nil {
		errs = append(errs, field.Errorf("url", "%v", err))
	}
	if err := c.TokenTTL.Check("token_ttl", time.Second, imds.MaxTokenTTL); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// parseBase accepts http://host[:port] with no path, query or user info.
func parseBase(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, err
	case u.Scheme != "http":
		return nil, errors.New("must start with http:// (IMDS speaks plain HTTP)")
	case u.Host == "" || u.User != nil:
		return nil, errors.New("must be http://HOST[:PORT]")
	case u.Path != "" && u.Path != "/", u.RawQuery != "", u.Fragment != "":
		return nil, errors.New("must not have a path, query or fragment: paths come from the request")
	}
	return &url.URL{Scheme: "http", Host: u.Host}, nil
}
