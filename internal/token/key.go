package token

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// KeyLen is the length of a token key in bytes.
const KeyLen = 32

// LoadKey reads the token key from path, creating it (mode 0600, directory
// 0700) with fresh random bytes on first start. A key file that others can
// read, or of the wrong length, is refused: anyone holding the key can mint
// tokens for any caller.
func LoadKey(path string) ([]byte, error) {
	key, err := readKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKey(path)
	}
	return key, err
}

func readKey(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read token key: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read token key: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("token key %s: mode %#o lets others read it; chmod 600 it", path, st.Mode().Perm())
	}
	key := make([]byte, KeyLen+1)
	n, _ := f.Read(key)
	if n != KeyLen {
		return nil, fmt.Errorf("token key %s: %d bytes, want %d; remove it to have a new one made (all tokens then become invalid)", path, n, KeyLen)
	}
	return key[:KeyLen], nil
}

func createKey(path string) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create token key directory: %w", err)
	}
	key := make([]byte, KeyLen)
	if _, err := rand.Read(key); err != nil {
		return nil, fmt.Errorf("create token key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readKey(path) // another process made it first
	}
	if err != nil {
		return nil, fmt.Errorf("create token key: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("write token key %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("write token key %s: %w", path, err)
	}
	return key, nil
}
