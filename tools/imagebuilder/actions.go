package imagebuilder

import (
	"errors"

	"gopkg.in/yaml.v3"
)

// The action modules this package knows, with their documented inputs: a
// step with another action is refused, rather than passed unchecked.

type executeBash struct {
	Commands []string `yaml:"commands"`
}

type executeBinary struct {
	Path      string   `yaml:"path"`
	Arguments []string `yaml:"arguments"`
}

type s3Download []struct {
	Source              string `yaml:"source"`
	Destination         string `yaml:"destination"`
	ExpectedBucketOwner string `yaml:"expectedBucketOwner"`
	Overwrite           *bool  `yaml:"overwrite"`
}

// actions check a step's inputs for each known action module.
var actions = map[string]func(*yaml.Node) error{
	"ExecuteBash": func(n *yaml.Node) error {
		var in executeBash
		if err := decodeNode(n, &in); err != nil {
			return err
		}
		if len(in.Commands) == 0 {
			return errors.New("commands: required, a list of bash commands")
		}
		return nil
	},
	"ExecuteBinary": func(n *yaml.Node) error {
		var in executeBinary
		if err := decodeNode(n, &in); err != nil {
			return err
		}
		if in.Path == "" {
			return errors.New("path: required")
		}
		return nil
	},
	"S3Download": func(n *yaml.Node) error {
		var in s3Download
		if err := decodeNode(n, &in); err != nil {
			return err
		}
		if len(in) == 0 {
			return errors.New("a list of {source, destination}: required")
		}
		for _, d := range in {
			if d.Source == "" || d.Destination == "" {
				return errors.New("source and destination: both required in every item")
			}
		}
		return nil
	},
}
