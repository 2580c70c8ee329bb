package cache

import (
	"math/rand/v2"
	"time"
)

// After an upstream failure, a path is asked again only after a back-off
// from minRetry doubling to maxRetry, each wait drawn from [d/2, d] so that
// paths and hosts do not retry in step. While it lasts a held answer is
// served; a caller with none waits for the retry if it fits its budget.
const (
	minRetry = 100 * time.Millisecond
	maxRetry = time.Second
)

// backoff is lo doubled for each failure after the first, at most hi.
func backoff(failures int, lo, hi time.Duration) time.Duration {
	return min(lo<<min(failures-1, 20), hi)
}

// jitter draws a wait from [d/2, d].
func jitter(d time.Duration) time.Duration {
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}
