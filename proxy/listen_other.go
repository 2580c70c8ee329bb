//go:build !linux

package proxy

func noIPv6(error) bool { return false }
