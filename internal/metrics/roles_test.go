package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/sts"
)

func TestRoles(t *testing.T) {
	stats := sts.Stats{
		Calls:      map[sts.Kind]uint64{sts.OK: 4, sts.Throttled: 2},
		Gets:       map[sts.Outcome]uint64{sts.Hit: 10, sts.Miss: 3, sts.Refused: 1},
		Refreshes:  5,
		Sessions:   3,
		RefreshLag: 1500 * time.Millisecond,
	}
	out := scrape(t, New(Sources{Roles: func() sts.Stats { return stats }}))
	for _, want := range []string{
		`imdsguard_sts_calls_total{outcome="ok"} 4`,
		`imdsguard_sts_calls_total{outcome="throttled"} 2`,
		`imdsguard_sts_calls_total{outcome="denied"} 0`,
		`imdsguard_role_credentials_reads_total{outcome="hit"} 10`,
		`imdsguard_role_credentials_reads_total{outcome="refused"} 1`,
		`imdsguard_sts_refreshes_total 5`,
		`imdsguard_role_sessions 3`,
		`imdsguard_sts_refresh_lag_seconds 1.5`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}
