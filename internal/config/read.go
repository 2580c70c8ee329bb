package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/goccy/go-yaml"
	"github.com/goccy/go-yaml/parser"
)

// Load reads the configuration file at path. When the file does not exist
// and missingOK is set (the default path was not overridden), it returns the
// defaults: `imdsguard run` with no file works on an instance.
func Load(path string, missingOK bool) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && missingOK {
		c := Default()
		return &c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Read(bytes.NewReader(data), path)
}

// Read parses and validates a configuration. name is used in errors. The
// error, when there is one, is an *Errors listing every problem found.
func Read(r io.Reader, name string) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	c := Default()
	c.Version = 0 // the file must say it
	c.File = name
	if err := yaml.UnmarshalWithOptions(data, &c, yaml.Strict()); err != nil {
		return nil, &Errors{File: name, List: []*Error{decodeError(name, data, err)}}
	}
	if err := c.Validate(); err != nil {
		return nil, positioned(name, data, err)
	}
	return &c, nil
}

// Warn positions warnings (strings starting with a field path, as the
// policy package returns them) the same way as errors.
func Warn(c *Config, section string, warnings []string) []string {
	if c.File == "" || len(warnings) == 0 {
		return warnings
	}
	data, err := os.ReadFile(c.File)
	if err != nil {
		return warnings
	}
	f, perr := parser.ParseBytes(data, 0)
	out := make([]string, 0, len(warnings))
	for _, w := range warnings {
		path, msg := splitWarning(w)
		e := &Error{File: c.File, Field: joinSection(section, path), Msg: msg}
		if perr == nil {
			e.Line, e.Column = locate(f, e.Field)
		}
		out = append(out, e.Error())
	}
	return out
}
