package chart_test

import (
	"strings"
	"testing"

	"github.com/imdsguard/imdsguard/tools/chart"
)

// TestBadConfigIsCaught: helm renders any tree under `config`, so a
// configuration the daemon would refuse renders fine; Objects.Config, the
// daemon's own loader, refuses it and names the field, before anything is
// installed.
func TestBadConfigIsCaught(t *testing.T) {
	b := newBench(t)
	for _, c := range []struct {
		name   string
		config m
		field  string // named in the daemon's error
	}{
		{"an unknown imds_v1 mode", m{"policy": m{"rules": []any{m{"name": "r", "match": m{}, "allow": []any{"/**"}, "imds_v1": "sometimes"}}}}, "imds_v1"},
		{"a port out of range", m{"listen": m{"port": 70000}}, "listen.port"},
		{"a misspelt section", m{"polcy": m{"mode": "enforce"}}, "polcy"},
		{"no version", m{"version": nil}, "version"},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := b.render(t, m{"config": c.config})
			_, err := o.Config()
			if err == nil {
				t.Fatalf("config %v: the daemon's loader accepted it", c.config)
			}
			if !strings.Contains(err.Error(), c.field) {
				t.Errorf("error does not name %s: %v", c.field, err)
			}
			t.Logf("refused: %v", err)
		})
	}
}

// TestBadValuesAreRefused: what helm itself refuses, with the reason: a
// value of the wrong type or an unknown one (values.schema.json), and a
// ServiceMonitor without metrics (the template's fail).
func TestBadValuesAreRefused(t *testing.T) {
	b := newBench(t)
	for _, c := range []struct {
		name   string
		values m
		want   string // in helm's error
	}{
		{"a port that is no number", m{"metrics": m{"port": "http"}}, "port"},
		{"a misspelt value", m{"tolerration": []any{}}, "tolerration"},
		{"a ServiceMonitor without metrics", m{"serviceMonitor": m{"enabled": true}}, "serviceMonitor.enabled needs metrics.enabled"},
		{"an image pull policy helm does not know", m{"image": m{"pullPolicy": "Sometimes"}}, "pullPolicy"},
		{"a local redirect port out of range", m{"ciliumLocalRedirect": m{"enabled": true, "port": 70000}}, "port"},
		{"a misspelt Cilium value", m{"ciliumLocalRedirect": m{"enable": true}}, "enable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := chart.Render(b.helm, b.dir, chart.DefaultRelease, c.values)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("values %v: err %v, want helm to refuse, naming %q", c.values, err, c.want)
			}
		})
	}
}

// TestLint: `helm lint --strict` (a warning fails too) with the defaults
// and with every optional object on.
func TestLint(t *testing.T) {
	b := newBench(t)
	for _, values := range []m{
		nil,
		{"metrics": m{"enabled": true}, "serviceMonitor": m{"enabled": true}, "ciliumLocalRedirect": m{"enabled": true}},
	} {
		out, err := chart.Lint(b.helm, b.dir, values)
		if err != nil {
			t.Errorf("values %v: %v", values, err)
			continue
		}
		t.Logf("values %v:\n%s", values, out)
	}
}
