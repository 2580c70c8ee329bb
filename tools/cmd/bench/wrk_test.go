package main

import (
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseWrk(t *testing.T) {
	// What wrk 4.1 prints with wrkLua: its own summary, then the line.
	const out = `Running 4s test @ http://127.0.0.1:9004/latest/meta-data/instance-id
  2 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   521.37us    1.06ms  30.53ms   96.71%
    Req/Sec    16.38k     1.63k   19.16k    72.50%
  130391 requests in 4.00s, 22.63MB read
Requests/sec:  32568.43
Transfer/sec:      5.65MB
BENCHRESULT	130391	4003552	362.0	5349.5	0	2	0	1	3
`
	for _, tc := range []struct {
		name, out string
		want      wrkResult
		err       string
	}{
		{"a run", out, wrkResult{Requests: 130391, Elapsed: 4003552 * time.Microsecond,
			P50: 362 * time.Microsecond, P99: 5349500 * time.Nanosecond,
			Errors: wrkErrors{Connect: 0, Read: 2, Write: 0, Status: 1, Timeout: 3}}, ""},
		{"CRLF", "BENCHRESULT\t5\t1000000\t1.5\t2.0\t0\t0\t0\t0\t0\r\n",
			wrkResult{Requests: 5, Elapsed: time.Second, P50: 1500 * time.Nanosecond, P99: 2 * time.Microsecond}, ""},
		{"no line: wrk failed", "unable to connect to 127.0.0.1:9004 Connection refused\n", wrkResult{}, "no BENCHRESULT line"},
		{"short line", "BENCHRESULT\t5\t1000000\t1.5\n", wrkResult{}, "3 fields, want 9"},
		{"not a number", "BENCHRESULT\t5\t1000000\tnan\t2\t0\t0\t0\t0\t0\n", wrkResult{}, `field 3 "nan"`},
		{"infinite", "BENCHRESULT\t5\t1000000\t1\t+Inf\t0\t0\t0\t0\t0\n", wrkResult{}, `field 4 "+Inf"`},
		{"negative", "BENCHRESULT\t-5\t1000000\t1\t2\t0\t0\t0\t0\t0\n", wrkResult{}, `field 1 "-5"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseWrk(tc.out)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one saying %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

func TestWrkErrorsTotal(t *testing.T) {
	if got := (wrkErrors{1, 2, 4, 8, 16}).Total(); got != 31 {
		t.Errorf("Total = %d, want 31", got)
	}
}

func TestWrkArgs(t *testing.T) {
	for _, tc := range []struct {
		conc   int
		header string
		want   []string
	}{
		{1, "X-aws-ec2-metadata-token: T", []string{"-t1", "-c1", "-d4s", "--timeout", "10s", "-s", "r.lua", "-H", "X-aws-ec2-metadata-token: T", "http://u"}},
		{1000, "", []string{"-t2", "-c1000", "-d4s", "--timeout", "10s", "-s", "r.lua", "http://u"}},
	} {
		if got := wrkArgs(tc.conc, 4*time.Second, "r.lua", tc.header, "http://u"); !slices.Equal(got, tc.want) {
			t.Errorf("c=%d: %q, want %q", tc.conc, got, tc.want)
		}
	}
}
