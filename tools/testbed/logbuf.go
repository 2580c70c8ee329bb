package testbed

import (
	"bytes"
	"sync"
)

// logBuf collects a child's output; safe for the writer goroutine exec.Cmd
// runs and the test reading it at the same time.
type logBuf struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail returns at most the last n bytes, marked when cut.
func (b *logBuf) tail(n int) string {
	s := b.String()
	if len(s) <= n {
		return s
	}
	return "[...]" + s[len(s)-n:]
}
