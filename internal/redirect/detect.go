package redirect

import "strings"

// countRules counts the rules ("-A" lines) and imdsguard chains in save text.
func countRules(save string) (rules, ours int) {
	for _, l := range strings.Split(save, "\n") {
		switch {
		case strings.HasPrefix(l, "-"):
			rules++
		case strings.HasPrefix(l, ":IMDSGUARD-"):
			ours++
		}
	}
	return rules, ours
}

// chooseBackend is detectBackend's decision; rules is -1 when a backend's
// tools are missing.
func chooseBackend(nftRules, nftOurs, legacyRules, legacyOurs int) string {
	switch {
	case nftRules < 0 && legacyRules >= 0:
		return "legacy"
	case legacyRules < 0:
		return "nft"
	case nftOurs > 0:
		return "nft"
	case legacyOurs > 0:
		return "legacy"
	case legacyRules > nftRules:
		return "legacy"
	}
	return "nft"
}
