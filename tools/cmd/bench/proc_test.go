package main

import (
	"strings"
	"testing"
)

func TestStatTicks(t *testing.T) {
	// utime 1000, stime 234, cutime 5, cstime 6 (fields 14 to 17).
	const rest = " S 1 7 7 0 -1 4194560 1526 0 0 0 1000 234 5 6 20 0 9 0 1719 1340645376 8421 18446744073709551615"
	for _, tc := range []struct {
		name, stat string
		want       int64
		err        string
	}{
		{"plain name", "4242 (imdsguard)" + rest, 1245, ""},
		{"name with spaces and parentheses", "4242 (nginx: worker) (x))" + rest, 1245, ""},
		{"no name", "4242 imdsguard" + rest, 0, "no ')'"},
		{"cut short", "4242 (wrk) S 1 7 7 0 -1 4194560 1526 0 0 0 1000", 0, "fields after the name"},
		{"not a number", "4242 (wrk)" + strings.Replace(rest, " 234 ", " x ", 1), 0, `"x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := statTicks(tc.stat)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("statTicks = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}

func TestCountEstablished(t *testing.T) {
	// Port 9001 is 2329 in hex. Rows: the listener (0A), two clients of
	// 9001, the second listed twice (a table read while it changed), one in
	// TIME_WAIT (06), a client's own side (local port ephemeral, remote
	// 9001), and a connection of another server (8990, 231E).
	const table = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:2329 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1
   1: 0100007F:2329 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 2 1
   2: 0100007F:2329 0100007F:9C41 01 00000000:00000000 00:00000000 00000000     0        0 3 1
   3: 0100007F:2329 0100007F:9C41 01 00000000:00000000 00:00000000 00000000     0        0 3 1
   4: 0100007F:2329 0100007F:9C42 06 00000000:00000000 00:00000000 00000000     0        0 0 1
   5: 0100007F:9C40 0100007F:2329 01 00000000:00000000 00:00000000 00000000     0        0 4 1
   6: 0100007F:231E 0100007F:9C43 01 00000000:00000000 00:00000000 00000000     0        0 5 1
`
	if got := countEstablished(table, 9001); got != 2 {
		t.Errorf("port 9001: %d connections, want 2", got)
	}
	if got := countEstablished(table, 8990); got != 1 {
		t.Errorf("port 8990: %d connections, want 1", got)
	}
	if got := countEstablished(table, 80); got != 0 {
		t.Errorf("port 80: %d connections, want 0", got)
	}
}
