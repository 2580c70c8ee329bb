package main

import (
	"strings"
	"testing"
)

func TestParseRunsRejects(t *testing.T) {
	for _, in := range []string{
		"1\t1\tdirect\t1\n",
		"1\t1\tnope\t1\t1\t1\t1\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\n",
		"1\t1\tdirect\tx\t1\t1\t1\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\n",
		"1\t1\tdirect\t1\t0\t1\t1\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\t0\n",
		"1\t1\tdirect\t1\t1\t1\t1\t0\t0\t0\t0\t0\t0\t0\n", // the 14 fields of before
		"",
	} {
		if _, err := parseRuns(strings.NewReader(in), "in"); err == nil {
			t.Errorf("parseRuns(%q): no error", in)
		}
	}
}
