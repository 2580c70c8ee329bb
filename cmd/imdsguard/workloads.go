package main

import (
	"errors"
	"io"
	"log/slog"

	"github.com/imdsguard/imdsguard/internal/runtime/containerd"
	"github.com/imdsguard/imdsguard/internal/runtime/cri"
	"github.com/imdsguard/imdsguard/internal/runtime/docker"
	"github.com/imdsguard/imdsguard/internal/workload"
)

// runtimes are the container runtimes' clients, one per configured socket.
type runtimes struct {
	list   []workload.Runtime
	closer []io.Closer
}

// newRuntimes makes a client for every runtime whose socket is configured
// (cfg `runtimes:`); none connects yet. A runtime that is not installed
// costs a failed dial per miss TTL, and its containers say why.
func newRuntimes(cfg workload.Config, log *slog.Logger) (*runtimes, error) {
	var rs runtimes
	add := func(rt workload.Runtime, c io.Closer, err error) error {
		if err != nil {
			return err
		}
		rs.list, rs.closer = append(rs.list, rt), append(rs.closer, c)
		log.Info("container runtime", "runtime", rt.Name())
		return nil
	}
	if cfg.Docker != "" {
		rt, err := docker.New(cfg.Docker)
		if err := add(rt, rt, err); err != nil {
			return nil, errors.Join(err, rs.Close())
		}
	}
	if cfg.Containerd != "" {
		rt, err := containerd.New(cfg.Containerd)
		if err := add(rt, rt, err); err != nil {
			return nil, errors.Join(err, rs.Close())
		}
	}
	if cfg.CRIO != "" {
		rt, err := cri.New(workload.CRIO, cfg.CRIO)
		if err := add(rt, rt, err); err != nil {
			return nil, errors.Join(err, rs.Close())
		}
	}
	return &rs, nil
}

// Close closes every client.
func (rs *runtimes) Close() error {
	var errs []error
	for _, c := range rs.closer {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
