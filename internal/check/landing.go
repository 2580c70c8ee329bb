package check

import (
	"context"
	"strings"
)

// Landing is one family's landing address on lo: where container
// metadata traffic is DNATed to (and where the proxy listens for it).
type Landing struct {
	Family  string // "ipv4" or "ipv6"
	Addr    string // e.g. 169.254.254.169/32
	Present bool
	// IPv6Off: lo has no IPv6 at all, so no address can be there; container
	// IPv6 metadata traffic is refused, not served.
	IPv6Off bool
}

const landingName = "landing addresses on lo (where container metadata traffic is DNATed)"

// landing: each redirected family's landing address is on lo.
func landing(ctx context.Context, p Probes) Result {
	r := Result{Name: landingName}
	ls, err := p.Landing(ctx)
	if err != nil {
		r.Detail = "cannot read lo's addresses: " + err.Error()
		r.Fix = "run imdsguard check as root"
		return r
	}
	if len(ls) == 0 {
		r.Pass = true
		r.Detail = "none needed: no container interface is redirected (redirect.container_interfaces is empty, or the redirect is off)"
		r.Short = "no landing address needed"
		return r
	}
	var lines, here []string
	r.Pass = true
	for _, l := range ls {
		switch {
		case l.IPv6Off:
			lines = append(lines, l.Family+" "+l.Addr+": none, IPv6 is off on lo (container IPv6 metadata traffic is refused, not served)")
		case l.Present:
			lines = append(lines, l.Family+" "+l.Addr+": present")
			here = append(here, l.Addr)
		default:
			lines = append(lines, l.Family+" "+l.Addr+": MISSING (container metadata traffic of this family lands nowhere: refused)")
			r.Pass = false
		}
	}
	r.Detail = strings.Join(lines, "\n")
	r.Short = "landing " + strings.Join(here, ", ") + " on lo"
	if len(here) == 0 {
		r.Short = "no landing address in use (IPv6 off on lo)"
	}
	if !r.Pass {
		r.Fix = "the daemon puts it back within a second (systemctl start imdsguard, or: imdsguard rules install); if it keeps vanishing, something flushes lo's addresses (a network manager): exclude lo from it"
	}
	return r
}
