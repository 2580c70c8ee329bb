package fakeimds

import "sync/atomic"

// Stats counts what the fake received. The JSON names are what
// GET /_fakeimds/stats answers and what the command prints when it stops.
type Stats struct {
	TokenPuts    int64 `json:"token_puts"`   // requests to the token path with PUT
	Gets         int64 `json:"gets"`         // GET and HEAD on metadata paths
	Unauthorized int64 `json:"unauthorized"` // requests answered 401
}

type counters struct {
	tokenPuts, gets, unauthorized atomic.Int64
}

func (c *counters) snapshot() Stats {
	return Stats{
		TokenPuts:    c.tokenPuts.Load(),
		Gets:         c.gets.Load(),
		Unauthorized: c.unauthorized.Load(),
	}
}
