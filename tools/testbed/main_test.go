package testbed

import (
	"fmt"
	"os"
	"slices"
	"syscall"
	"testing"
	"time"
)

func TestProgram(t *testing.T) {
	for _, tc := range []struct {
		name   string
		body   func(t TB, ran *[]string)
		status int
		ran    []string
	}{
		{"passes", func(t TB, ran *[]string) {
			t.Cleanup(func() { *ran = append(*ran, "first") })
			t.Cleanup(func() { *ran = append(*ran, "second") })
		}, 0, []string{"second", "first"}},
		{"fatal ends the body, cleanups still run", func(t TB, ran *[]string) {
			t.Cleanup(func() { *ran = append(*ran, "cleanup") })
			t.Fatalf("stop here")
			*ran = append(*ran, "after Fatalf")
		}, 1, []string{"cleanup"}},
		{"an error fails it and goes on", func(t TB, ran *[]string) {
			t.Errorf("wrong")
			*ran = append(*ran, "after Errorf")
		}, 1, []string{"after Errorf"}},
		{"skip is a failure", func(t TB, ran *[]string) {
			t.Skip("no root")
			*ran = append(*ran, "after Skip")
		}, 1, nil},
		{"a panicking cleanup fails it, the others run", func(t TB, ran *[]string) {
			t.Cleanup(func() { *ran = append(*ran, "other") })
			t.Cleanup(func() { panic("boom") })
		}, 1, []string{"other"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ran []string
			if got := Main(func(p TB) { tc.body(p, &ran) }); got != tc.status {
				t.Errorf("status %d, want %d", got, tc.status)
			}
			if !slices.Equal(ran, tc.ran) {
				t.Errorf("ran %q, want %q", ran, tc.ran)
			}
		})
	}
}

// TestProgramSignal: after a SIGINT the body sees Failed, ends, and only
// then do the cleanups run; the status is 130.
func TestProgramSignal(t *testing.T) {
	var ran []string
	status := Main(func(p TB) {
		p.Cleanup(func() { ran = append(ran, "cleanup") })
		if err := syscall.Kill(os.Getpid(), syscall.SIGINT); err != nil {
			p.Fatalf("kill -INT self: %v", err)
		}
		deadline := time.Now().Add(5 * time.Second)
		for !p.Failed() && time.Now().Before(deadline) {
			time.Sleep(5 * time.Millisecond)
		}
		ran = append(ran, fmt.Sprintf("body saw Failed: %t", p.Failed()))
	})
	if want := []string{"body saw Failed: true", "cleanup"}; status != 130 || !slices.Equal(ran, want) {
		t.Errorf("status %d, ran %q; want 130, %q", status, ran, want)
	}
}
