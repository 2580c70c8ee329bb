// Package packertemplate reads a Packer HCL2 template the way the tests of
// packaging/packer need it: parsed with the HCL library Packer itself uses
// (errors name file:line:column), its top-level blocks found by type and
// labels, attribute values evaluated, and a copy with named constructs
// removed, for a Packer too old to parse them (Debian's 1.6.6).
package packertemplate

import (
	"fmt"
	"path"
	"slices"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/hashicorp/hcl/v2/hclwrite"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// Parse parses src as HCL2 native syntax.
func Parse(src []byte, filename string) (*hclsyntax.Body, error) {
	f, diags := hclparse.NewParser().ParseHCL(src, filename)
	if diags.HasErrors() {
		return nil, fmt.Errorf("parse %s: %w", filename, diags)
	}
	return f.Body.(*hclsyntax.Body), nil
}

// Blocks returns the blocks of body of type typ whose labels start with
// labels.
func Blocks(body *hclsyntax.Body, typ string, labels ...string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range body.Blocks {
		if b.Type == typ && hasPrefix(b.Labels, labels) {
			out = append(out, b)
		}
	}
	return out
}

func hasPrefix(labels, prefix []string) bool {
	return len(labels) >= len(prefix) && slices.Equal(labels[:len(prefix)], prefix)
}

// Eval evaluates the attribute name of body in ctx (nil: literals only).
func Eval(body *hclsyntax.Body, name string, ctx *hcl.EvalContext) (cty.Value, error) {
	a, ok := body.Attributes[name]
	if !ok {
		return cty.NilVal, fmt.Errorf("no attribute %q in the block at %s", name, body.SrcRange)
	}
	v, diags := a.Expr.Value(ctx)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("evaluate %s at %s: %w", name, a.SrcRange, diags)
	}
	return v, nil
}

// Functions are the Packer functions the templates of packaging/packer call
// inside their provisioners, for Eval.
var Functions = map[string]function.Function{"basename": basename}

var basename = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "path", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return cty.StringVal(path.Base(args[0].AsString())), nil
	},
})

// Construct names one thing of a template: an attribute or a nested block
// of the top-level blocks of one type (and leading labels).
type Construct struct {
	Block  string   // top-level block type: "packer", "source"
	Labels []string // leading labels, e.g. {"amazon-ebs"}; none: every block of the type
	Attr   string   // the attribute, or
	Nested string   // the nested block type
	Why    string   // why it is named
}

func (c Construct) String() string {
	what := c.Attr
	if c.Nested != "" {
		what = c.Nested + " {}"
	}
	return fmt.Sprintf("%s %q: %s", c.Block, c.Labels, what)
}

// Strip returns src without the constructs. Each must be present in every
// block it names, and name at least one block: a construct the template no
// longer has is an error, so that a list of them cannot outlive the template.
func Strip(src []byte, filename string, cs []Construct) ([]byte, error) {
	f, diags := hclwrite.ParseConfig(src, filename, hcl.InitialPos)
	if diags.HasErrors() {
		return nil, fmt.Errorf("parse %s: %w", filename, diags)
	}
	for _, c := range cs {
		if err := strip(f.Body(), c); err != nil {
			return nil, fmt.Errorf("strip %s from %s: %w", c, filename, err)
		}
	}
	return f.Bytes(), nil
}

func strip(body *hclwrite.Body, c Construct) error {
	n := 0
	for _, b := range body.Blocks() {
		if b.Type() != c.Block || !hasPrefix(b.Labels(), c.Labels) {
			continue
		}
		n++
		if err := stripIn(b, c); err != nil {
			return err
		}
	}
	if n == 0 {
		return fmt.Errorf("no such block")
	}
	return nil
}

func stripIn(b *hclwrite.Block, c Construct) error {
	where := fmt.Sprintf("%s %q", b.Type(), b.Labels())
	if c.Attr != "" {
		if b.Body().GetAttribute(c.Attr) == nil {
			return fmt.Errorf("%s has no attribute %s", where, c.Attr)
		}
		b.Body().RemoveAttribute(c.Attr)
		return nil
	}
	found := false
	for _, nb := range b.Body().Blocks() {
		if nb.Type() == c.Nested {
			b.Body().RemoveBlock(nb)
			found = true
		}
	}
	if !found {
		return fmt.Errorf("%s has no %s block", where, c.Nested)
	}
	return nil
}
