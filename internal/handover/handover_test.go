package handover

import (
	"context"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// serveEcho accepts on ln until it is closed, answering each connection
// with tag and closing it.
func serveEcho(ln net.Listener, tag string, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, tag)
			c.Close()
		}
	}()
}

// TestTakeOver: a successor takes a holder's listening socket while
// clients connect in a loop; every connection is answered (by one or the
// other), none refused or reset, and afterwards only the successor answers.
func TestTakeOver(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, SocketName)
	log := slog.New(slog.DiscardHandler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	var old sync.WaitGroup
	serveEcho(ln, "old", &old)
	srv, err := Listen(sock, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gave := make(chan int, 1)
	served := make(chan bool, 1)
	go func() {
		served <- srv.Serve(ctx, func() []Listener { return []Listener{{Name: "proxy " + addr, Listener: ln}} }, func(pid int) {
			ln.Close() // stop accepting: the socket lives on in the successor
			gave <- pid
		})
	}()

	var answered, failed atomic.Int64
	stop := make(chan struct{})
	var clients sync.WaitGroup
	for range 4 {
		clients.Add(1)
		go func() {
			defer clients.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				c, err := net.DialTimeout("tcp", addr, time.Second)
				if err != nil {
					failed.Add(1)
					continue
				}
				c.SetDeadline(time.Now().Add(2 * time.Second))
				b, err := io.ReadAll(c)
				c.Close()
				if err != nil || len(b) == 0 {
					failed.Add(1)
					continue
				}
				answered.Add(1)
			}
		}()
	}
	time.Sleep(100 * time.Millisecond)

	got, pid, err := Take(sock)
	if err != nil || len(got) != 1 {
		t.Fatalf("Take: %v listeners, err %v", len(got), err)
	}
	if pid != os.Getpid() || got[0].Name != "proxy "+addr || got[0].Addr().String() != addr {
		t.Fatalf("Take: pid %d, %s at %s", pid, got[0].Name, got[0].Addr())
	}
	var succ sync.WaitGroup
	serveEcho(got[0], "new", &succ)
	select {
	case p := <-gave:
		if p != os.Getpid() {
			t.Errorf("gave to pid %d, want %d", p, os.Getpid())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the holder never heard the successor's ok")
	}
	if !<-served {
		t.Error("Serve did not report the handover")
	}
	old.Wait()
	time.Sleep(200 * time.Millisecond)
	close(stop)
	clients.Wait()
	t.Logf("%d connections answered, %d failed, during and after the handover", answered.Load(), failed.Load())
	if failed.Load() != 0 || answered.Load() == 0 {
		t.Errorf("%d failed connections (answered %d): a handover must refuse none", failed.Load(), answered.Load())
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(c)
	c.Close()
	if string(b) != "new" {
		t.Errorf("after the handover %q answered, want the successor", b)
	}
	got[0].Close()
	succ.Wait()
}

// TestTakeNobody: no socket, or a stale socket file: nothing to take, no
// error (the caller binds).
func TestTakeNobody(t *testing.T) {
	dir := t.TempDir()
	if lns, _, err := Take(filepath.Join(dir, SocketName)); lns != nil || err != nil {
		t.Errorf("no socket: %v, %v", lns, err)
	}
	srv, err := Listen(filepath.Join(dir, SocketName), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv.ln.UnixListener.Close() // the daemon died: the file stays
	if lns, _, err := Take(filepath.Join(dir, SocketName)); lns != nil || err != nil {
		t.Errorf("stale socket: %v, %v", lns, err)
	}
}

// TestSuccessorDiesBeforeOK: a peer that asks and never says ok takes
// nothing; the holder goes on serving and hands over to the next one.
func TestSuccessorDiesBeforeOK(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, SocketName)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv, err := Listen(sock, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gave := make(chan int, 1)
	go srv.Serve(ctx, func() []Listener { return []Listener{{Name: "x", Listener: ln}} }, func(pid int) { gave <- pid })
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(c, hello)
	buf := make([]byte, 4096)
	c.Read(buf)
	c.Close() // gone without "ok"
	select {
	case <-gave:
		t.Fatal("handed over to a successor that never took the listeners")
	case <-time.After(300 * time.Millisecond):
	}
	got, _, err := Take(sock)
	if err != nil || len(got) != 1 {
		t.Fatalf("the next successor: %d listeners, %v", len(got), err)
	}
	got[0].Close()
	<-gave
}

// TestLock: one holder at a time, released on Release, and the holder's
// pid visible.
func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), LockName)
	a, err := TryLock(path)
	if err != nil || a == nil {
		t.Fatalf("first TryLock: %v %v", a, err)
	}
	if b, err := TryLock(path); b != nil || err != nil {
		t.Fatalf("second TryLock while held: %v %v", b, err)
	}
	if h := Holder(path); h != os.Getpid() {
		t.Errorf("Holder = %d, want %d", h, os.Getpid())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got := make(chan *Lock)
	go func() {
		l, _ := WaitLock(ctx, path, 5*time.Millisecond)
		got <- l
	}()
	time.Sleep(50 * time.Millisecond)
	a.Release()
	b := <-got
	if b == nil {
		t.Fatal("WaitLock did not get the released lock")
	}
	b.Release()
	if h := Holder(path); h != 0 {
		t.Errorf("Holder after release = %d, want 0", h)
	}
}
