package main

import (
	"context"
	"time"
)

// memSample is the largest memory and connection count seen during a run.
type memSample struct {
	PSSKB int64 // peak PSS of the server's process tree
	Conns int   // most established connections on its port at a sample
	Err   error // the first failed read, if any
}

// sampleMemory samples the server pid (listening on port) every interval
// until ctx ends, from one interval after the start, and sends what it saw
// on the returned channel.
func sampleMemory(ctx context.Context, pid, port int, interval time.Duration) <-chan memSample {
	out := make(chan memSample, 1)
	go func() {
		var s memSample
		tick := time.NewTicker(interval)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				out <- s
				return
			case <-tick.C:
			}
			s.add(pid, port)
		}
	}()
	return out
}

func (s *memSample) add(pid, port int) {
	kb, err := treePSS(pid)
	if err == nil {
		var n int
		n, err = openConns(pid, port)
		s.PSSKB, s.Conns = max(s.PSSKB, kb), max(s.Conns, n)
	}
	if err != nil && s.Err == nil {
		s.Err = err
	}
}

// sampleInterval spaces the samples of a run of d: once a second, at least
// three times a run.
func sampleInterval(d time.Duration) time.Duration {
	return min(time.Second, d/4)
}
