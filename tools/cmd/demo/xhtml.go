package main

import "strings"

// shortenXHTML replaces each XHTML error page of IMDS (from "<?xml" to
// "</html>", and a blank line after it) by one line naming its title:
// "[XHTML error page: 401 - Unauthorized]". Other lines are kept.
func shortenXHTML(lines []string) []string {
	var out []string
	inPage, title, afterPage := false, "", false
	for _, l := range lines {
		if strings.Contains(l, "<?xml") {
			inPage, title = true, ""
		}
		if !inPage {
			if !afterPage || l != "" {
				out = append(out, l)
			}
			afterPage = false
			continue
		}
		if t, ok := between(l, "<title>", "</title>"); ok {
			title = t
		}
		if strings.Contains(l, "</html>") {
			out = append(out, "[XHTML error page: "+title+"]")
			inPage, afterPage = false, true
		}
	}
	if inPage { // a page cut short
		out = append(out, "[XHTML error page: "+title+"]")
	}
	return out
}

// between returns the text of s between open and close.
func between(s, open, close string) (string, bool) {
	_, rest, ok := strings.Cut(s, open)
	if !ok {
		return "", false
	}
	t, _, ok := strings.Cut(rest, close)
	return t, ok
}
