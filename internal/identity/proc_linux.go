package identity

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

const (
	recentPerOwner = 4    // pids remembered per (uid, netns)
	recentOwners   = 1024 // owners remembered before the memory starts over
	maxHints       = 1 << 16
)

// procs finds the process that holds a socket, and reads what identity
// reports about a process, from /proc.
type procs struct {
	root   string
	rootFd int // open /proc directory, -1 when it could not be opened
	err    error

	mu     sync.Mutex
	recent map[ownerKey][]int // pids that lately held sockets of an owner, newest first
	// hints are sockets seen in fd tables while looking for another one:
	// inode → the process and descriptor that held it then. A hint is only
	// where to look first; it is confirmed by reading that link again.
	hints    map[uint32]sockHint
	walking  map[int]chan struct{}      // pid → closed when the walk of its fd table in progress ends
	scanning map[ownerKey]chan struct{} // owner → closed when the scan of every process in progress ends
	walks    atomic.Uint64              // fd tables read through (holds), for tests and benchmarks
}

// sockHint says that process pid held socket inode ino as descriptor fd.
type sockHint struct {
	ino     uint32
	pid, fd int
}

type ownerKey struct {
	uid   uint32
	netns uint64
}

// proc is an open /proc/PID directory. Reads through it fail (ESRCH) once the
// process has exited, even when its pid has been reused meanwhile, so what
// is read through it belongs to the process that held the socket.
type proc struct {
	pid int
	fd  int
}

func (p proc) close() { unix.Close(p.fd) }

func openProcs(root string) *procs {
	fd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		fd, err = -1, fmt.Errorf("open %s: %w", root, err)
	}
	return &procs{root: root, rootFd: fd, err: err, recent: make(map[ownerKey][]int), hints: make(map[uint32]sockHint), walking: make(map[int]chan struct{}), scanning: make(map[ownerKey]chan struct{})}
}

func (p *procs) close() error {
	if p.rootFd < 0 {
		return nil
	}
	return unix.Close(p.rootFd)
}

// find returns the process holding socket inode ino, made by uid, in network
// namespace netns (0: any). It tries, in order: the pids that lately held
// sockets of the same owner; processes owned by uid, highest pid first; all
// other processes, highest pid first (the socket may have changed hands, or
// its process changed user, which also makes /proc/PID root's when the
// process is no longer dumpable). The caller closes the proc.
func (p *procs) find(ino, uid uint32, netns uint64) (proc, error) {
	if p.rootFd < 0 {
		return proc{}, p.err
	}
	key := ownerKey{uid, netns}
	found := func(pr proc) (proc, error) {
		p.remember(key, pr.pid)
		return pr, nil
	}
	// The cheap ways first: a hint, then the owner's recent processes.
	cheap := func() (proc, bool) {
		if pr, ok := p.fromHint(ino, netns); ok {
			return pr, true
		}
		for _, pid := range p.recentPids(key) {
			if pr, _, ok := p.open(pid, netns); ok {
				if p.holds(pr, ino) {
					return pr, true
				}
				pr.close()
			}
		}
		return proc{}, false
	}
	if pr, ok := cheap(); ok {
		return found(pr)
	}
	// One scan of every process per owner at a time: the lookups of a
	// burst of new connections wait for the scan in progress, which notes
	// every socket it reads, and try the cheap ways again after it.
	for {
		done, busy := p.startScan(key)
		if !busy {
			break
		}
		<-done
		if pr, ok := cheap(); ok {
			return found(pr)
		}
	}
	defer p.endScan(key)
	pids, err := p.pids()
	if err != nil {
		return proc{}, err
	}
	if pr, ok := p.scan(pids, ino, netns, func(owner uint32) bool { return owner == uid }); ok {
		return found(pr)
	}
	if pr, ok := p.scan(pids, ino, netns, func(owner uint32) bool { return owner != uid }); ok {
		return found(pr)
	}
	return proc{}, fmt.Errorf("find the process holding socket:[%d]: no process has it open", ino)
}

// startScan marks a scan of every process for owner k as in progress and
// returns its done channel, or, when one already is, that scan's channel
// and busy.
func (p *procs) startScan(k ownerKey) (done chan struct{}, busy bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ch, ok := p.scanning[k]; ok {
		return ch, true
	}
	ch := make(chan struct{})
	p.scanning[k] = ch
	return ch, false
}

// endScan ends the scan in progress for k, if any, and wakes its waiters.
func (p *procs) endScan(k ownerKey) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if ch, ok := p.scanning[k]; ok {
		delete(p.scanning, k)
		close(ch)
	}
}

// fromHint opens the process a walk saw holding socket ino, if there is
// such a hint and the process still holds it (one readlink).
func (p *procs) fromHint(ino uint32, netns uint64) (proc, bool) {
	h, ok := p.hint(ino)
	if !ok {
		return proc{}, false
	}
	pr, _, ok := p.open(h.pid, netns)
	if !ok {
		return proc{}, false
	}
	if !pr.holdsAt(h.fd, socketLink(ino)) {
		pr.close()
		return proc{}, false
	}
	return pr, true
}

// scan looks for the socket among the processes in netns whose /proc
// directory owner passes the filter. Before each process it looks for a
// hint: a walk made meanwhile, for another lookup, may have seen the socket.
func (p *procs) scan(pids []int, ino uint32, netns uint64, owner func(uint32) bool) (proc, bool) {
	for _, pid := range pids {
		if pr, ok := p.fromHint(ino, netns); ok {
			return pr, true
		}
		pr, uid, ok := p.open(pid, netns)
		if !ok {
			continue
		}
		if owner(uid) && p.holds(pr, ino) {
			return pr, true
		}
		pr.close()
	}
	return proc{}, false
}

// open opens /proc/PID if the process still exists and is in netns (0:
// any); it also returns the directory's owner (the process's euid, or 0 when
// the process is not dumpable).
func (p *procs) open(pid int, netns uint64) (proc, uint32, bool) {
	fd, err := unix.Openat(p.rootFd, strconv.Itoa(pid), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return proc{}, 0, false
	}
	pr := proc{pid: pid, fd: fd}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		pr.close()
		return proc{}, 0, false
	}
	if netns != 0 {
		var ns unix.Stat_t
		if err := unix.Fstatat(fd, "ns/net", &ns, 0); err != nil || ns.Ino != netns {
			pr.close()
			return proc{}, 0, false
		}
	}
	return pr, st.Uid, true
}

// pids lists the processes, highest pid first: newer processes are likelier
// callers than long-running daemons.
func (p *procs) pids() ([]int, error) {
	f, err := os.Open(p.root)
	if err != nil {
		return nil, fmt.Errorf("list processes: %w", err)
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("list processes in %s: %w", p.root, err)
	}
	pids := make([]int, 0, len(names))
	for _, n := range names {
		if pid, err := strconv.Atoi(n); err == nil {
			pids = append(pids, pid)
		}
	}
	slices.SortFunc(pids, func(a, b int) int { return b - a })
	return pids, nil
}

// hint returns where socket ino was last seen, and forgets it: a hint is
// used once (confirmed or not, the lookup that follows knows better).
func (p *procs) hint(ino uint32) (sockHint, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	h, ok := p.hints[ino]
	if ok {
		delete(p.hints, ino)
	}
	return h, ok
}

// note records sockets seen in a walk; the memory starts over when full.
func (p *procs) note(seen []sockHint) {
	if len(seen) == 0 {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.hints)+len(seen) > maxHints {
		clear(p.hints)
	}
	for _, h := range seen[:min(len(seen), maxHints)] {
		p.hints[h.ino] = h
	}
}

func (p *procs) recentPids(k ownerKey) []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.recent[k])
}

func (p *procs) remember(k ownerKey, pid int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.recent[k]; !ok && len(p.recent) >= recentOwners {
		clear(p.recent)
	}
	l := slices.DeleteFunc(slices.Clone(p.recent[k]), func(x int) bool { return x == pid })
	l = append([]int{pid}, l...)
	p.recent[k] = l[:min(len(l), recentPerOwner)]
}

// holds reports whether one of the process's file descriptors is socket
// ino. It reads the fd directory, then the links from the highest fd down
// (a new connection is usually the newest, highest fd) until it finds the
// socket, and notes every other socket it reads on the way (p.note), so that
// a process holding a thousand sockets (a load generator, a connection pool)
// costs one walk, not one per connection. One walk of a process at a time:
// lookups that arrive together (a thousand connections opened at once) wait
// for the walk in progress and try its hints before walking themselves.
func (p *procs) holds(pr proc, ino uint32) bool {
	want := socketLink(ino)
	var done chan struct{}
	for done == nil {
		p.mu.Lock()
		busy, ok := p.walking[pr.pid]
		if !ok {
			done = make(chan struct{})
			p.walking[pr.pid] = done
		}
		p.mu.Unlock()
		if ok {
			<-busy
			if h, ok := p.hint(ino); ok && h.pid == pr.pid && pr.holdsAt(h.fd, want) {
				return true
			}
		}
	}
	defer func() {
		p.mu.Lock()
		delete(p.walking, pr.pid)
		p.mu.Unlock()
		close(done)
	}()
	dir, err := unix.Openat(pr.fd, "fd", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false // gone, or a kernel thread's empty table
	}
	defer unix.Close(dir)
	p.walks.Add(1)
	buf := direntPool.Get().(*[]byte)
	defer direntPool.Put(buf)
	var fds []int
	for {
		n, err := unix.ReadDirent(dir, *buf)
		if err != nil {
			return false
		}
		if n <= 0 {
			break
		}
		fds = appendFds(fds, (*buf)[:n])
	}
	slices.Sort(fds)
	var link [64]byte
	var seen []sockHint
	defer func() { p.note(seen) }()
	for i := len(fds) - 1; i >= 0; i-- {
		n, err := unix.Readlinkat(dir, strconv.Itoa(fds[i]), link[:])
		if err != nil {
			continue
		}
		if isSocketLink(link[:n], want) {
			return true
		}
		if ino, ok := socketInode(link[:n]); ok {
			seen = append(seen, sockHint{ino: ino, pid: pr.pid, fd: fds[i]})
		}
	}
	return false
}

// holdsAt reports whether the process's descriptor fd is the socket want
// names: one readlink, to confirm a hint.
func (pr proc) holdsAt(fd int, want []byte) bool {
	var link [64]byte
	n, err := unix.Readlinkat(pr.fd, "fd/"+strconv.Itoa(fd), link[:])
	return err == nil && isSocketLink(link[:n], want)
}

var direntPool = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// appendFds appends the descriptor numbers of one getdents batch of an fd
// directory.
func appendFds(fds []int, b []byte) []int {
	for len(b) > 0 {
		used, _, names := unix.ParseDirent(b, 1, nil)
		b = b[used:]
		if len(names) == 0 {
			continue
		}
		if fd, err := strconv.Atoi(names[0]); err == nil {
			fds = append(fds, fd)
		}
	}
	return fds
}

// procInfo is what identity reports about a process.
type procInfo struct {
	Comm, Exe   string
	Status      procStatus
	Cgroup      string
	ContainerID string
}

// read reads the process's comm, exe, status and cgroup. An error means the
// process is gone (or /proc refuses); exe alone may be "" (kernel threads,
// or a process in another mount namespace whose binary we cannot resolve).
func (pr proc) read() (procInfo, error) {
	var info procInfo
	bp := procBufs.Get().(*[]byte)
	b := *bp
	defer func() {
		if cap(b) <= 64<<10 {
			*bp = b[:0]
			procBufs.Put(bp)
		}
	}()
	var err error
	if b, err = readAt(pr.fd, "status", b[:0]); err != nil {
		return procInfo{}, fmt.Errorf("read /proc/%d/status: %w", pr.pid, err)
	}
	if info.Status, err = parseStatus(b); err != nil {
		return procInfo{}, fmt.Errorf("read /proc/%d/status: %w", pr.pid, err)
	}
	if b, err = readAt(pr.fd, "comm", b[:0]); err != nil {
		return procInfo{}, fmt.Errorf("read /proc/%d/comm: %w", pr.pid, err)
	}
	info.Comm = string(bytes.TrimSuffix(b, []byte("\n")))
	if b, err = readAt(pr.fd, "cgroup", b[:0]); err == nil {
		info.Cgroup, info.ContainerID = parseCgroup(b)
	}
	info.Exe = readlinkAt(pr.fd, "exe")
	return info, nil
}

// procBufs holds the buffers /proc files are read into (read): a lookup
// reads three, and a burst of a thousand new connections makes a thousand
// lookups, which made 12 MB of garbage at once. What is kept of a file is
// copied out of the buffer (parseStatus, parseCgroup).
var procBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// readlinkAt reads a link relative to an open directory ("" on error). Its
// buffer comes from the heap: a PATH_MAX array on the stack would grow the
// stack of every connection's goroutine that asks (a thousand connections,
// a thousand 16 KB stacks).
func readlinkAt(dir int, name string) string {
	for size := 256; size <= unix.PathMax; size *= 4 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(dir, name, buf)
		if err != nil {
			return ""
		}
		if n < size {
			return string(buf[:n])
		}
	}
	return ""
}

// readAt reads a (small) /proc file relative to an open directory,
// appending it to b (grown when it is too small); it returns b, also on
// error.
func readAt(dir int, name string, b []byte) ([]byte, error) {
	fd, err := unix.Openat(dir, name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return b, err
	}
	defer unix.Close(fd)
	if cap(b)-len(b) < 512 {
		b = slices.Grow(b, 4096)
	}
	for {
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return b, err
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
		if len(b) == cap(b) {
			b = slices.Grow(b, len(b))
		}
	}
}
