package e2e

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// BenchmarkRoles measures roles per workload (issue 22), report only: the
// fake STS answers after 20 ms. It prints "ROLESBENCH" lines, which
// scripts/bench-roles.sh (run by `make bench`) writes into
// docs/ROLES_BENCH.md.
//
//   - cold: a host user's first request for a role session nobody asked
//     for yet (no container event prefetches it): curl's time_total,
//     through AssumeRole; each sample a new role (a policy reload);
//
//   - container start: `docker run` of a container labelled app=ci whose
//     command is the Go SDK v2's credentials read, start to exit, beside
//     the same run reading instance-id (no STS);
//
//   - cached: keep-alive reads of the held credentials by one curl
//     (time_total of each), beside the same reads of instance-id.
//
//     cd tools && go test -run '^$' -bench BenchmarkRoles -benchtime 1x ./e2e/
func BenchmarkRoles(b *testing.B) {
	const (
		coldN   = 10
		startN  = 5
		cachedN = 500
	)
	rb := newRolesBench(b, 20*time.Millisecond)
	user := rb.user
	session := fmt.Sprintf("host.uid-%d", user.UID)
	base := rolesConfig(rb.d.Sock, rb.user.Name, rb.slow.Name)

	// The daemon installs its SIGHUP handler on a goroutine of its own,
	// after its port accepts connections (StartGuard's sign): a reload
	// sent at once can find the default action and end it. One request
	// and a moment first.
	rb.curlMany(b, user, "/latest/meta-data/instance-id", 1)
	time.Sleep(time.Second)

	// cold: a new role per sample, so the read waits for its AssumeRole.
	var cold []time.Duration
	for i := range coldN {
		role := fmt.Sprintf("bench-cold-%d", i)
		n := eventCount(rb.g, "policy reloaded")
		if err := rb.h.ReloadGuard(rb.g, testbed.HostGuardConfig{Extra: strings.Replace(base, "role: host-agent", "role: "+role, 1)}); err != nil {
			b.Fatal(err)
		}
		testbed.WaitFor(b, "policy reloaded", func() bool { return eventCount(rb.g, "policy reloaded") > n })
		time.Sleep(600 * time.Millisecond) // a token back in the STS bucket (2/s)
		body, status, took := rb.curlAs(b, user, credsPath+role)
		if status != 200 || accessKey(body) != minted(role, session, 1) {
			b.Fatalf("cold read %d: %d %q", i, status, body)
		}
		cold = append(cold, took)
	}

	// container start to first credentials, beside start to instance-id.
	var start, startBase []time.Duration
	for i := range startN {
		for _, c := range []struct {
			args []string
			want string
			into *[]time.Duration
		}{
			{[]string{"--label", "app=ci", "--name", fmt.Sprintf("start-%d", i), clientImage, "/bin/imdsclient", "-sdk", "v2", "-no-fallback", "-creds"},
				minted("ci-builder", fmt.Sprintf("start-%d", i), 1), &start},
			{[]string{"--label", "app=ci", "--name", fmt.Sprintf("base-%d", i), clientImage, "/bin/imdsclient", "-sdk", "v2", "-no-fallback", "-get", "instance-id"},
				testbed.AEMMInstanceID, &startBase},
		} {
			t0 := time.Now()
			r := rb.e.Run(rb.d.Docker(append([]string{"run", "--rm"}, c.args...)...))
			took := time.Since(t0)
			if r.Err != nil || !strings.Contains(r.Stdout, c.want) {
				b.Fatalf("docker run %v: want %s: %v", c.args, c.want, r)
			}
			*c.into = append(*c.into, took)
			time.Sleep(600 * time.Millisecond)
		}
	}

	// cached: one curl, keep-alive, cachedN reads each.
	cached := rb.curlMany(b, user, credsPath+"bench-cold-9", cachedN)
	cachedBase := rb.curlMany(b, user, "/latest/meta-data/instance-id", cachedN)

	for _, l := range []struct {
		name string
		d    []time.Duration
	}{
		{fmt.Sprintf("cold first request to credentials, host user, STS 20 ms (%d roles)", coldN), cold},
		{fmt.Sprintf("container start to credentials: docker run of SDK v2 -creds (%d)", startN), start},
		{fmt.Sprintf("container start to instance-id: docker run of SDK v2 -get (%d, no STS)", startN), startBase},
		{fmt.Sprintf("cached credentials read, keep-alive curl (%d)", cachedN), cached},
		{fmt.Sprintf("instance-id read, keep-alive curl (%d, for comparison)", cachedN), cachedBase},
	} {
		fmt.Printf("ROLESBENCH | %s | %s |\n", l.name, percentiles(l.d))
	}
	calls := rb.sts.Calls()
	fmt.Printf("ROLESBENCH STS calls: %d (one per role session: %d cold roles, %d containers labelled app=ci)\n", len(calls), coldN, 2*startN)
	// How the containers' first credentials reads were answered: hit (the
	// prefetch on the container's start event was done), coalesced (it
	// waited for it), miss (the read started the AssumeRole).
	first := map[string]string{}
	for _, ev := range events(rb.g) {
		sess := str(ev.Raw["session"])
		if strings.HasPrefix(sess, "start-") && strings.HasPrefix(ev.Path, credsPath+"ci-builder") && first[sess] == "" {
			first[sess] = str(ev.Raw["role_cache"])
		}
	}
	how := map[string]int{}
	for _, c := range first {
		how[c]++
	}
	var hows []string
	for c, k := range how {
		hows = append(hows, fmt.Sprintf("%s %d", c, k))
	}
	slices.Sort(hows)
	fmt.Printf("ROLESBENCH the containers' first credentials reads, by how the broker answered: %s\n", strings.Join(hows, ", "))
	b.ReportMetric(float64(median(cold).Microseconds())/1000, "cold-p50-ms")
	b.ReportMetric(float64(median(cached).Microseconds())/1000, "cached-p50-ms")
}

// curlMany reads path n times over one keep-alive connection as u and
// returns curl's time_total of each.
func (b *rolesBench) curlMany(tb testing.TB, u testbed.User, path string, n int) []time.Duration {
	tb.Helper()
	args := []string{"-s", "-g", "--max-time", "60", "-w", "%{http_code} %{time_total}\n"}
	for range n {
		args = append(args, "-o", "/dev/null", testbed.IMDSURL(4)+path)
	}
	c := testbed.Cmd{Name: "curl", Path: testbed.CurlPath, Env: b.e.ClientEnv(), Args: args}
	r := b.e.Run(b.e.AsUser(u, b.h.InHost(c)))
	var out []time.Duration
	for _, line := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		code, secs, _ := strings.Cut(line, " ")
		f, err := strconv.ParseFloat(secs, 64)
		if code != "200" || err != nil {
			tb.Fatalf("curl %s: %q: %v %s", path, line, r.Err, r.Stderr)
		}
		out = append(out, time.Duration(f*float64(time.Second)))
	}
	if len(out) != n {
		tb.Fatalf("curl %s: %d results, want %d: %v %s", path, len(out), n, r.Err, r.Stderr)
	}
	return out
}

func median(d []time.Duration) time.Duration { return pct(d, 50) }

// pct is the p-th percentile (nearest rank) of d.
func pct(d []time.Duration, p int) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	i := (p*len(s)+99)/100 - 1
	return s[max(i, 0)]
}

func percentiles(d []time.Duration) string {
	r := func(x time.Duration) string {
		return strconv.FormatFloat(float64(x.Microseconds())/1000, 'f', 2, 64) + " ms"
	}
	return fmt.Sprintf("%s | %s | %s | %s", r(pct(d, 0)), r(median(d)), r(pct(d, 99)), r(pct(d, 100)))
}
