// Package unixgrpc makes the gRPC client connection of a runtime that
// serves its API on a unix socket (containerd, CRI-O). It does not connect:
// the first call does, a socket that is not there fails each call (the
// workload cache says why), and a restarted runtime is reconnected within
// two seconds.
package unixgrpc

import (
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
)

// New returns a client connection to the gRPC server on socket.
func New(socket string) (*grpc.ClientConn, error) {
	return grpc.NewClient("unix://"+socket,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, MaxDelay: 2 * time.Second},
			MinConnectTimeout: time.Second,
		}),
		grpc.WithUserAgent("imdsguard"))
}
