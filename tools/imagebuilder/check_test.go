package imagebuilder

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// small is a valid document with one of each thing Check looks at.
const small = `name: t
schemaVersion: "1.0"
parameters:
  - Uri:
      type: string
      default: s3://b/k
phases:
  - name: build
    steps:
      - name: Get
        action: S3Download
        timeoutSeconds: 60
        onFailure: Abort
        maxAttempts: 3
        inputs:
          - source: "{{ Uri }}"
            destination: /tmp/x
      - name: Run
        action: ExecuteBash
        inputs:
          commands:
            - "cat {{ build.Get.inputs[0].destination }} # {{Uri}}"
`

func parseString(t *testing.T, s string) (*Document, error) {
	t.Helper()
	return Parse(strings.NewReader(s))
}

// TestImageBuilderCheckSmall: the small document passes, and Script
// resolves its references.
func TestImageBuilderCheckSmall(t *testing.T) {
	d, err := parseString(t, small)
	if err != nil {
		t.Fatal(err)
	}
	if errs := d.Check(); len(errs) > 0 {
		t.Fatal(errors.Join(errs...))
	}
	for _, c := range []struct {
		values map[string]string
		want   string
	}{
		{nil, "cat /tmp/x # s3://b/k\n"},
		{map[string]string{"Uri": "s3://o/p"}, "cat /tmp/x # s3://o/p\n"},
	} {
		if got, err := d.Script("build", "Run", c.values); err != nil || got != c.want {
			t.Errorf("Script with %v = %q, %v; want %q", c.values, got, err, c.want)
		}
	}
	if _, err := d.Script("build", "Get", nil); err == nil {
		t.Error("Script of an S3Download step: no error")
	}
}

// TestImageBuilderCheckRefuses: each departure from the documented
// structure, made in the small document, is found, by Parse or by Check.
func TestImageBuilderCheckRefuses(t *testing.T) {
	for _, c := range []struct{ old, new, want string }{
		{`schemaVersion: "1.0"`, `schemaVersion: "2.0"`, `schemaVersion "2.0"`},
		{`  - name: build`, `  - name: deploy`, `phase "deploy": not one of`},
		{`name: Run`, `name: Get`, `step "Get": name used twice`},
		{`name: Run`, `name: Run.It`, `step "Run.It": name must match`},
		{`name: Run`, `name: 9Run`, `step "9Run": name must match`},
		{`action: ExecuteBash`, `action: RunScript`, `action "RunScript": not a known action module`},
		{`          commands:`, `          command:`, `field command not found`},
		{"            destination: /tmp/x\n", "", `source and destination: both required`},
		{`onFailure: Abort`, `onFailure: Retry`, `onFailure "Retry"`},
		{`timeoutSeconds: 60`, `timeoutSeconds: 0`, `timeoutSeconds 0`},
		{`maxAttempts: 3`, `maxAttempts: 0`, `maxAttempts 0`},
		{`maxAttempts: 3`, `maxAttempts: three`, `cannot unmarshal`},
		{`source: "{{ Uri }}"`, `source: "{{ Url }}"`, `{{ Url }}: no such parameter`},
		{`{{ build.Get.inputs[0].destination }}`, `{{ build.Put.inputs[0].destination }}`, `no step build.Put`},
		{`{{ build.Get.inputs[0].destination }}`, `{{ build.Get.destination }}`, `not a chaining expression`},
		{`{{ build.Get.inputs[0].destination }}`, `{{ build.Run.inputs.commands }}`, `step build.Run does not come before build.Run`},
		{"  - Uri:\n", "  - Ur:\n", `parameters "Ur": name must match`},
		{`      type: string`, `      type: integer`, `type "integer", want string`},
		{`# {{Uri}}`, ``, ``}, // still used by Get: no error
		{"  - Uri:\n", "  - Other:\n      type: string\n  - Uri:\n", `"Other": never used`},
		{`        maxAttempts: 3`, "        maxAttempts: 3\n        timeout: 5", `field timeout not found`},
		{`        maxAttempts: 3`, "        maxAttempts: 3\n        maxAttempts: 4", `already defined`},
		{"name: t\n", "name: t\nversion: 1\n", `field version not found`},
		{`phases:`, "constants:\n  - Uri:\n      type: string\n      value: x\nphases:", `"Uri": name used twice`},
	} {
		t.Run(c.new, func(t *testing.T) {
			doc := strings.Replace(small, c.old, c.new, 1)
			if doc == small {
				t.Fatalf("the small document has no %q", c.old)
			}
			got := problems(t, doc)
			if c.want == "" && got != "" || !strings.Contains(got, c.want) {
				t.Errorf("%q -> %q: problems %q, want one with %q\n%s", c.old, c.new, got, c.want, doc)
			}
		})
	}
}

// problems is what Parse and Check say of doc.
func problems(t *testing.T, doc string) string {
	t.Helper()
	d, err := parseString(t, doc)
	if err != nil {
		return err.Error()
	}
	if errs := d.Check(); len(errs) > 0 {
		return fmt.Sprint(errs)
	}
	return ""
}
