// Package imagebuilder reads an EC2 Image Builder component document (an
// AWSTOE document, schemaVersion 1.0) strictly into the structure its user
// guide documents, checks it against the documented rules (Check), and
// gives the bash that its ExecuteBash steps would run (Script), so that
// packaging/imagebuilder can be tested without AWS.
//
// The structure and rules, from the EC2 Image Builder user guide ("Use the
// AWSTOE component document framework", "Define and reference variables",
// "Action modules"):
//
//	name, description         optional strings
//	schemaVersion             "1.0"
//	parameters                a list of one-key maps: name -> {type, default, description};
//	                          names 3-128 of [A-Za-z0-9_-], unique; type string
//	constants                 the same, {type, value}
//	phases[].name             unique; Image Builder runs build, validate, test
//	phases[].steps[]          name (unique in its phase), action, timeoutSeconds
//	                          (-1 or > 0), onFailure (Abort|Continue|Ignore),
//	                          maxAttempts (>= 1), inputs (the action module's)
//	{{ Name }}                a parameter or constant, inside a quoted string
//	{{ phase.step.inputs[i].field }}  chaining: an earlier step's input
package imagebuilder

import (
	"bytes"
	"fmt"
	"io"

	"gopkg.in/yaml.v3"
)

// Document is a component document.
type Document struct {
	Name          string                `yaml:"name"`
	Description   string                `yaml:"description"`
	SchemaVersion string                `yaml:"schemaVersion"`
	Parameters    []map[string]Variable `yaml:"parameters"`
	Constants     []map[string]Variable `yaml:"constants"`
	Phases        []Phase               `yaml:"phases"`
}

// Variable is a parameter (type, default, description) or a constant
// (type, value).
type Variable struct {
	Type        string  `yaml:"type"`
	Default     *string `yaml:"default"`
	Value       *string `yaml:"value"`
	Description string  `yaml:"description"`
}

// Phase is a named list of steps.
type Phase struct {
	Name  string `yaml:"name"`
	Steps []Step `yaml:"steps"`
}

// Step runs one action module with its inputs.
type Step struct {
	Name           string    `yaml:"name"`
	Action         string    `yaml:"action"`
	TimeoutSeconds *int      `yaml:"timeoutSeconds"`
	OnFailure      string    `yaml:"onFailure"`
	MaxAttempts    *int      `yaml:"maxAttempts"`
	If             yaml.Node `yaml:"if"`
	Loop           yaml.Node `yaml:"loop"`
	Inputs         yaml.Node `yaml:"inputs"`
}

// Parse reads a document strictly: unknown fields, duplicate keys and
// values of the wrong type are errors, and so is more than one document.
func Parse(r io.Reader) (*Document, error) {
	var d Document
	if err := strictDecode(r, &d); err != nil {
		return nil, fmt.Errorf("read component document: %w", err)
	}
	return &d, nil
}

func strictDecode(r io.Reader, out any) error {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil {
		return err
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		return fmt.Errorf("more than one YAML document (%v)", err)
	}
	return nil
}

// decodeNode decodes n into out as strictly as Parse: yaml.Node.Decode
// alone would accept unknown fields.
func decodeNode(n *yaml.Node, out any) error {
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	return strictDecode(bytes.NewReader(b), out)
}
