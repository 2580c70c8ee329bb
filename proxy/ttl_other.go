//go:build !linux

package proxy

func (cs *connState) setTTL(hop int) error { return nil }

func (cs *connState) resetTTL() error { return nil }
