package packertemplate

import (
	"strings"
	"testing"
)

// TestPackerStrip: Strip removes what it is told from every block it
// names, and refuses a construct that is not there (so a list of them
// cannot outlive the template it was made for).
func TestPackerStrip(t *testing.T) {
	const src = `packer {
  required_plugins {
    amazon = { source = "github.com/hashicorp/amazon" }
  }
}
source "amazon-ebs" "a" {
  imds_support = "v2.0"
  region       = "x"
}
source "amazon-ebs" "b" {
  imds_support = "v2.0"
}
source "null" "c" {
  communicator = "none"
}
`
	imds := Construct{Block: "source", Labels: []string{"amazon-ebs"}, Attr: "imds_support"}
	plugins := Construct{Block: "packer", Nested: "required_plugins"}
	out, err := Strip([]byte(src), "t.pkr.hcl", []Construct{imds, plugins})
	if err != nil {
		t.Fatal(err)
	}
	for _, gone := range []string{"imds_support", "required_plugins"} {
		if strings.Contains(string(out), gone) {
			t.Errorf("%s still in:\n%s", gone, out)
		}
	}
	if _, err := Parse(out, "stripped.pkr.hcl"); err != nil || !strings.Contains(string(out), "region") {
		t.Errorf("stripped copy (%v):\n%s", err, out)
	}
	for _, c := range []struct {
		c    Construct
		want string
	}{
		{Construct{Block: "source", Labels: []string{"amazon-ebs"}, Attr: "region"}, `source ["amazon-ebs" "b"] has no attribute region`},
		{Construct{Block: "source", Labels: []string{"amazon-ebs"}, Nested: "metadata_options"}, "has no metadata_options block"},
		{Construct{Block: "build", Attr: "sources"}, "no such block"},
		{Construct{Block: "source", Labels: []string{"docker"}, Attr: "image"}, "no such block"},
	} {
		if _, err := Strip([]byte(src), "t.pkr.hcl", []Construct{c.c}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Strip %s: err %v, want %q", c.c, err, c.want)
		}
	}
}
