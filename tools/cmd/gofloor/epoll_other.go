//go:build !linux

package main

import (
	"errors"
	"net"
	"time"
)

func serveEpoll(net.Listener, int, time.Duration) error { return errors.New("-mode epoll needs Linux") }
