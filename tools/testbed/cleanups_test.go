package testbed

import (
	"slices"
	"testing"
)

// Last added first, each once, including one added while they run.
func TestCleanupsOrder(t *testing.T) {
	var c Cleanups
	var got []int
	c.Add(func() { got = append(got, 1) })
	c.Add(func() { got = append(got, 2); c.Add(func() { got = append(got, 3) }) })
	c.Run(func(f func()) { f() })
	c.Run(func(f func()) { f() })
	if want := []int{2, 3, 1}; !slices.Equal(got, want) {
		t.Errorf("ran %v, want %v", got, want)
	}
}
