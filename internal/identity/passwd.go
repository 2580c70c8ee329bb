package identity

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// passwdNames maps uids to user names from a passwd file. It re-reads the
// file when its size or modification time changes. Users that only NSS knows
// (LDAP, sssd) have no name here: identity never asks anything but the file.
type passwdNames struct {
	path string

	mu    sync.Mutex
	mtime time.Time
	size  int64
	names map[uint32]string
}

func newPasswdNames(path string) *passwdNames { return &passwdNames{path: path} }

// Name returns the user name of uid, "" when the file has none or cannot be
// read (the last good copy is kept).
func (p *passwdNames) Name(uid uint32) (string, error) {
	fi, err := os.Stat(p.path)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		return p.names[uid], fmt.Errorf("stat %s: %w", p.path, err)
	}
	if p.names == nil || !fi.ModTime().Equal(p.mtime) || fi.Size() != p.size {
		if err := p.reload(); err != nil {
			return p.names[uid], err
		}
		p.mtime, p.size = fi.ModTime(), fi.Size()
	}
	return p.names[uid], nil
}

func (p *passwdNames) reload() error {
	f, err := os.Open(p.path)
	if err != nil {
		return fmt.Errorf("read %s: %w", p.path, err)
	}
	defer f.Close()
	names, err := parsePasswd(f)
	if err != nil {
		return fmt.Errorf("read %s: %w", p.path, err)
	}
	p.names = names
	return nil
}

// parsePasswd reads passwd(5) lines (name:password:uid:gid:gecos:home:shell).
// The first name of a uid wins, as getpwuid's does; comments, blank lines,
// NIS "+"/"-" entries and malformed lines are skipped.
func parsePasswd(r io.Reader) (map[uint32]string, error) {
	names := make(map[uint32]string)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		f := strings.SplitN(line, ":", 4)
		if len(f) < 4 || f[0] == "" {
			continue
		}
		uid, err := strconv.ParseUint(f[2], 10, 32)
		if err != nil {
			continue
		}
		if _, dup := names[uint32(uid)]; !dup {
			names[uint32(uid)] = f[0]
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return names, nil
}
