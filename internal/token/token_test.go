package token

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func minter(key string) *Minter { return NewMinter([]byte(strings.Repeat(key, KeyLen)[:KeyLen])) }

// Each case is verified at its time after the token was minted, in order,
// on the bubble's clock.
func TestVerify(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		m, otherKey := minter("k"), minter("x")
		tok := m.Mint("uid:1000", 60*time.Second)
		if len(tok) != Len {
			t.Fatalf("token %q has length %d, want %d", tok, len(tok), Len)
		}
		raw, _ := enc.DecodeString(tok)
		raw[len(raw)/2] ^= 1 // a bit of the token, not of its text: every flip still decodes
		flipped := enc.EncodeToString(raw)
		minted := time.Now()
		for _, c := range []struct {
			name    string
			at      time.Duration // after minting
			m       *Minter
			tok     string
			binding string
			want    error
		}{
			{"valid", 0, m, tok, "uid:1000", nil},
			{"other caller", 0, m, tok, "uid:1001", ErrForged},
			{"other key (restart with a new key)", 0, otherKey, tok, "uid:1000", ErrForged},
			{"flipped bit", 0, m, flipped, "uid:1000", ErrForged},
			{"empty", 0, m, "", "uid:1000", ErrMalformed},
			{"too long", 0, m, tok + "A", "uid:1000", ErrMalformed},
			{"not base64", 0, m, strings.Repeat("*", Len), "uid:1000", ErrMalformed},
			{"upstream-looking token", 0, m, "AQAEAGZ8Kxj3ZPLx0mIW1rDjqWK4gbh6PbmiTiJ7W9O1oH7I3Tb8Ew==", "uid:1000", ErrMalformed},
			{"last second", 59 * time.Second, m, tok, "uid:1000", nil},
			{"expired", 60 * time.Second, m, tok, "uid:1000", ErrExpired},
		} {
			time.Sleep(c.at - time.Since(minted))
			if got := c.m.Verify(c.tok, c.binding); !errors.Is(got, c.want) {
				t.Errorf("%s: Verify = %v, want %v", c.name, got, c.want)
			}
		}
	})
}

func TestLoadKeyCreatesAndReuses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "token.key")
	k1, err := LoadKey(path)
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, %v; want 0600", st.Mode(), err)
	}
	if dst, _ := os.Stat(filepath.Dir(path)); dst.Mode().Perm() != 0o700 {
		t.Fatalf("key directory mode %v, want 0700", dst.Mode())
	}
	k2, err := LoadKey(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatalf("second LoadKey = %x, %v; want the same key %x", k2, err, k1)
	}
	// A token minted before a "restart" verifies after it.
	tok := NewMinter(k1).Mint("uid:0", time.Hour)
	if err := NewMinter(k2).Verify(tok, "uid:0"); err != nil {
		t.Fatalf("token from before the restart: %v", err)
	}
}

func TestLoadKeyRefusesUnsafeFiles(t *testing.T) {
	dir := t.TempDir()
	loose := filepath.Join(dir, "loose")
	os.WriteFile(loose, bytes.Repeat([]byte{1}, KeyLen), 0o644)
	os.Chmod(loose, 0o644)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("abc"), 0o600)
	long := filepath.Join(dir, "long")
	os.WriteFile(long, bytes.Repeat([]byte{1}, KeyLen+1), 0o600)
	for _, p := range []string{loose, short, long} {
		if _, err := LoadKey(p); err == nil {
			t.Errorf("LoadKey(%s) accepted it", filepath.Base(p))
		}
	}
}

func TestConfigValidate(t *testing.T) {
	if err := DefaultConfig().Validate(); err != nil {
		t.Fatalf("default: %v", err)
	}
	c := Config{KeyFile: "rel/key", HopLimit: HopLimit{Host: 0, Container: 65}}
	err := c.Validate()
	for _, want := range []string{"key_file", "hop_limit.host", "hop_limit.container"} {
		if err == nil || !strings.Contains(err.Error(), want+":") {
			t.Errorf("Validate() = %v, want an error for %s", err, want)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	m := NewMinter(bytes.Repeat([]byte{7}, KeyLen))
	tok := m.Mint("uid:1000", time.Hour)
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Verify(tok, "uid:1000"); err != nil {
			b.Fatal(err)
		}
	}
}
