package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultIsValid(t *testing.T) {
	c := Default()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestSpecExample(t *testing.T) {
	c, err := Load("testdata/spec-example.yaml", false)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen.Port != 8989 || c.Upstream.TokenTTL.Duration != 6*time.Hour || len(c.Policy.Rules) != 5 ||
		c.Policy.Rules[2].IMDSv1 != "reject" || c.Tokens.HopLimit.Container != 2 || !c.Redirect.KeepOnExit ||
		c.Policy.Rules[4].Role != "ci-builder" || c.Roles.BaseARN != "arn:aws:iam::123456789012:role/" ||
		c.Roles.Namespaces["payments"][0] != "payments-*" || c.Roles.SessionDuration.Duration != time.Hour {
		t.Fatalf("parsed %+v", c)
	}
}

func TestMissingFieldsTakeDefaults(t *testing.T) {
	c, err := Read(strings.NewReader("version: 1\nlisten: {port: 9000}\n"), "min.yaml")
	if err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Listen.Port, want.File = 9000, "min.yaml"
	if !reflect.DeepEqual(c, &want) {
		t.Fatalf("got %+v\nwant %+v", c, want)
	}
}

// listen.local_redirect_port with the pod interfaces named is valid; its
// default is off.
func TestLocalRedirectPort(t *testing.T) {
	if p := Default().Listen.LocalRedirectPort; p != 0 {
		t.Fatalf("default local_redirect_port %d, want 0 (off)", p)
	}
	c, err := Read(strings.NewReader("version: 1\nlisten: {local_redirect_port: 8990}\nredirect: {container_interfaces: [lxc+, cilium_host]}\n"), "lrp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen.LocalRedirectPort != 8990 || c.Listen.Port != 8989 {
		t.Fatalf("listen %+v", c.Listen)
	}
}

func TestLoadMissingFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "none.yaml")
	if c, err := Load(path, true); err != nil || c.Listen.Port != 8989 {
		t.Fatalf("default path absent: %v, %v; want the defaults", c, err)
	}
	if _, err := Load(path, false); err == nil {
		t.Fatal("an explicit --config that does not exist was accepted")
	}
}

// Every error names file:line:column and the field.
func TestErrorsArePositioned(t *testing.T) {
	for _, c := range []struct {
		name, yaml string
		want       []string
	}{
		{"unknown field", "version: 1\ntokens:\n  key_file: /k\n  hop_limt: {host: 1}\n",
			[]string{`f.yaml:4:3: tokens.hop_limt: unknown field "hop_limt"`}},
		{"type error", "version: 1\ntokens:\n  hop_limit: {host: x}\n",
			[]string{"f.yaml:3:21: tokens.hop_limit.host: cannot unmarshal string (want int)"}},
		{"duplicate key", "version: 1\nversion: 1\n", []string{`f.yaml:2:1: `, `already defined`}},
		{"syntax", "version: 1\n  bad: [\n", []string{"f.yaml:1:"}},
		{"missing version", "listen: {port: 1}\n", []string{"f.yaml:1:1: version: missing"}},
		{"empty file", "", []string{"f.yaml:1:1: version: missing"}},
		{"wrong version", "version: 2\n", []string{"f.yaml:1:10: version: version 2 is not supported"}},
		{"selectors", strings.Join([]string{
			"version: 1",
			"runtimes: {docker: run/docker.sock}",
			"policy:",
			"  rules:",
			"    - name: a",
			"      match:",
			"        containers: {names: [], labels: {\"app*\": x}}",
			"        pods:",
			"          labels: {io.kubernetes.pod.name: \"\\u0001\", \"bad key\": y}",
			"      allow: [\"/**\"]",
			"    - name: b",
			"      match: {pods: {}}",
			"      allow: [\"/**\"]",
		}, "\n") + "\n", []string{
			"f.yaml:2:20: runtimes.docker: \"run/docker.sock\" must be an absolute path",
			"f.yaml:7:29: policy.rules[0].match.containers.names: empty list",
			"f.yaml:7:50: policy.rules[0].match.containers.labels.'app*': label key \"app*\"",
			"f.yaml:9:44: policy.rules[0].match.pods.labels.'io.kubernetes.pod.name': label value \"\\x01\" has a control character",
			"f.yaml:9:65: policy.rules[0].match.pods.labels.'bad key': label key \"bad key\" has a space",
			"f.yaml:12:21: policy.rules[1].match.pods: an empty selector",
		}},
		{"local redirect port out of range", "version: 1\nlisten: {port: 8989, local_redirect_port: 70000}\n",
			[]string{"f.yaml:2:43: listen.local_redirect_port: 70000 is not a TCP port"}},
		{"local redirect port is the proxy port", "version: 1\nredirect: {container_interfaces: [lxc+]}\nlisten:\n  port: 8989\n  local_redirect_port: 8989\n",
			[]string{"f.yaml:5:24: listen.local_redirect_port: 8989 is listen.port"}},
		{"local redirect port without the redirect", "version: 1\nredirect: {ipv4: false, ipv6: false}\nlisten: {local_redirect_port: 8990}\n",
			[]string{"f.yaml:3:31: listen.local_redirect_port: needs redirect.ipv4 or redirect.ipv6"}},
		{"local redirect port with every interface", "version: 1\nlisten: {local_redirect_port: 8990}\n",
			[]string{`f.yaml:2:31: listen.local_redirect_port: redirect.container_interfaces has "+"`}},
		{"roles", strings.Join([]string{
			"version: 1",
			"roles:",
			"  base_arn: arn:aws:iam::123456789012:role",
			"  namespaces:",
			"    payments: []",
			"    kube-system: [\"a b\"]",
			"  session_duration: 5m",
			"  sts_endpoint: sts.amazonaws.com",
			"  sts_rate: 0",
			"policy:",
			"  rules:",
			"    - name: a",
			"      match: {users: [root]}",
			"      role: \"bad role\"",
			"      allow: [\"/**\"]",
		}, "\n") + "\n", []string{
			"f.yaml:3:13: roles.base_arn: \"arn:aws:iam::123456789012:role\" must end with \"/\"",
			"f.yaml:5:15: roles.namespaces.payments: empty list",
			"f.yaml:6:19: roles.namespaces.kube-system[0]:",
			"f.yaml:7:21: roles.session_duration: 5m0s is out of range (15m0s..12h0m0s)",
			"f.yaml:8:17: roles.sts_endpoint:",
			"f.yaml:9:13: roles.sts_rate:",
			"f.yaml:14:13: policy.rules[0].role: role \"bad role\": \" \" is not allowed",
		}},
		{"rule role short name without base_arn", "version: 1\npolicy:\n  rules:\n    - {name: a, match: {users: [root]}, role: ci, allow: [\"/**\"]}\n",
			[]string{"f.yaml:4:47: policy.rules[0].role: \"ci\" is a short name and roles.base_arn is not set"}},
		{"several at once", strings.Join([]string{
			"version: 1",
			"listen: {port: 70000}",
			"upstream:",
			"  url: https://169.254.169.254",
			"  token_ttl: soon",
			"forwarded_headers: drop",
			"tokens: {key_file: relative, hop_limit: {host: 0}}",
			"policy:",
			"  rules:",
			"    - name: a",
			"      match: {users: [root]}",
			"      allow: [\"/latest/meta-data/**\"]",
			"    - name: b",
			"      allow: [\"/x\"]",
		}, "\n") + "\n", []string{
			"f.yaml:2:16: listen.port:",
			"f.yaml:6:20: forwarded_headers:",
			"f.yaml:4:8: upstream.url:",
			"f.yaml:5:14: upstream.token_ttl:",
			"f.yaml:7:20: tokens.key_file:",
			"f.yaml:7:48: tokens.hop_limit.host:",
			"f.yaml:12:15: policy.rules[0].allow[0]:",
			"f.yaml:13:11: policy.rules[1].match:",
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := Read(strings.NewReader(c.yaml), "f.yaml")
			var errs *Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Read = %v, want *Errors", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("errors:\n%v\nwant one containing %q", err, w)
				}
			}
		})
	}
}

func TestWarningsArePositioned(t *testing.T) {
	path := filepath.Join(t.TempDir(), "w.yaml")
	os.WriteFile(path, []byte("version: 1\npolicy:\n  rules:\n    - name: a\n      match: {users: [nosuchuser]}\n      allow: [\"/**\"]\n"), 0o644)
	c, err := Load(path, false)
	if err != nil {
		t.Fatal(err)
	}
	got := Warn(c, "policy", []string{"rules[0].match.users[0]: user \"nosuchuser\" does not resolve"})
	if len(got) != 1 || !strings.HasPrefix(got[0], path+":5:23: policy.rules[0].match.users[0]: user") {
		t.Fatalf("warnings %q", got)
	}
}
