package main

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseOptions(t *testing.T) {
	o, err := parseOptions(nil, "/repo", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Rounds != 3 || o.Duration != 4*time.Second || o.Warmup != 2*time.Second ||
		!slices.Equal(o.Conc, []int{1, 16, 256, 1000}) || o.Path != "/latest/meta-data/instance-id" ||
		o.Out != "/repo/docs/BENCHMARKS.md" || o.GuardA != "/repo/bin/imdsguard" || o.GuardB != "" || o.Redirect {
		t.Errorf("defaults: %+v", o)
	}
	o, err = parseOptions([]string{"-rounds", "1", "-duration", "2s", "-concurrency", "16, 1", "-imdsguard-b", "/tmp/old"}, "/repo", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.Rounds != 1 || o.Duration != 2*time.Second || !slices.Equal(o.Conc, []int{16, 1}) || o.GuardB != "/tmp/old" {
		t.Errorf("flags: %+v", o)
	}
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"-rounds", "0"}, "-rounds 0"},
		{[]string{"-duration", "1500ms"}, "whole seconds"},
		{[]string{"-duration", "0s"}, "at least 1s"},
		{[]string{"-warmup", "-1s"}, "-warmup"},
		{[]string{"-concurrency", "1,,16"}, `"" is not`},
		{[]string{"-concurrency", "0"}, `"0" is not`},
		{[]string{"-concurrency", "16,16"}, "16 twice"},
		{[]string{"-concurrency", "9999"}, "from 1 to 5000"},
		{[]string{"-path", "/2009-04-04/meta-data"}, "below /latest/"},
		{[]string{"extra"}, "unexpected arguments"},
	} {
		if _, err := parseOptions(tc.args, "/repo", io.Discard); err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: err %v, want one saying %q", tc.args, err, tc.err)
		}
	}
}

func TestCommandLine(t *testing.T) {
	o := options{Args: []string{"-rounds", "1", "-out", "/tmp/a b.md", "-path", "/latest/it's"}}
	want := `bin/bench -rounds 1 -out '/tmp/a b.md' -path '/latest/it'\''s'`
	if got := o.commandLine(); got != want {
		t.Errorf("commandLine = %s, want %s", got, want)
	}
	if got := (options{}).commandLine(); got != "bin/bench" {
		t.Errorf("no arguments: %s", got)
	}
}

func TestShown(t *testing.T) {
	o := options{Root: "/repo"}
	for path, want := range map[string]string{
		"/repo/bin/imdsguard": "bin/imdsguard",
		"/tmp/old/imdsguard":  "/tmp/old/imdsguard",
		"/repository/bin/x":   "/repository/bin/x",
	} {
		if got := o.shown(path); got != want {
			t.Errorf("shown(%s) = %s, want %s", path, got, want)
		}
	}
}
