package field

import (
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestPaths(t *testing.T) {
	for _, c := range []struct{ got, want string }{
		{Join("tokens", "hop_limit"), "tokens.hop_limit"},
		{Join("", "x"), "x"},
		{Join("x", ""), "x"},
		{Join("rules", "[2].allow"), "rules[2].allow"},
		{Index("allow", 3), "allow[3]"},
	} {
		if c.got != c.want {
			t.Errorf("got %q, want %q", c.got, c.want)
		}
	}
}

func TestPrefixAndSplit(t *testing.T) {
	err := errors.Join(Errorf("a", "bad a"), errors.Join(Errorf("rules[0].b", "bad b"), io.EOF))
	got := Prefix("policy", err)
	var paths []string
	for _, e := range Split(got) {
		var fe *Error
		if errors.As(e, &fe) {
			paths = append(paths, fe.Path)
		} else {
			paths = append(paths, "other:"+e.Error())
		}
	}
	if strings.Join(paths, ",") != "policy.a,policy.rules[0].b,other:EOF" {
		t.Fatalf("paths %v", paths)
	}
	if Prefix("x", nil) != nil || Split(nil) != nil {
		t.Fatal("nil in, nil out")
	}
}

func TestDuration(t *testing.T) {
	var d Duration
	d.UnmarshalText([]byte("90m"))
	if d.Duration != 90*time.Minute || d.Check("ttl", time.Second, 6*time.Hour) != nil {
		t.Fatalf("90m: %v", d)
	}
	if err := d.Check("ttl", time.Second, time.Hour); err == nil || !strings.Contains(err.Error(), "ttl: 1h30m0s is out of range") {
		t.Fatalf("range: %v", err)
	}
	d.UnmarshalText([]byte("soon"))
	if err := d.Check("ttl", 0, time.Hour); err == nil || !strings.Contains(err.Error(), `"soon" is not a duration`) {
		t.Fatalf("malformed: %v", err)
	}
}
