package main

import (
	"slices"
	"strings"
	"testing"
)

func TestShortenXHTML(t *testing.T) {
	page := `<?xml version="1.0" encoding="iso-8859-1"?>
<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">
 <head>
  <title>401 - Unauthorized</title>
 </head>
 <body>
  <h1>401 - Unauthorized</h1>
 </body>
</html>`
	for _, tc := range []struct {
		name string
		in   string
		want []string
	}{
		{"plain lines stay", "i-123\nHTTP 200", []string{"i-123", "HTTP 200"}},
		{"a page and curl's status", page + "\n\nHTTP 401", []string{"[XHTML error page: 401 - Unauthorized]", "HTTP 401"}},
		{"a message before the page", "imdsclient: failed\n" + page, []string{"imdsclient: failed", "[XHTML error page: 401 - Unauthorized]"}},
		{"a page cut short", strings.Join(strings.Split(page, "\n")[:6], "\n"), []string{"[XHTML error page: 401 - Unauthorized]"}},
		{"a blank line not after a page stays", "a\n\nb", []string{"a", "", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := shortenXHTML(strings.Split(tc.in, "\n")); !slices.Equal(got, tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestShellWords(t *testing.T) {
	got := shellWords([]string{"curl", "-H", "X-Forwarded-For: 203.0.113.9", "it's", "http://x/"})
	want := `curl -H 'X-Forwarded-For: 203.0.113.9' 'it'\''s' http://x/`
	if got != want {
		t.Errorf("got %s, want %s", got, want)
	}
}
