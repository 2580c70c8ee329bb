package testbed

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// CasesEnv names a variable that points at the bypass cases file; by
// default it is ../shared/bypass-cases.tsv beside the repository, else the
// snapshot in tools/testdata.
const CasesEnv = "IMDSGUARD_BYPASS_CASES"

// Case is one row of bypass-cases.tsv: a request sent byte for byte and
// what must come back.
type Case struct {
	Line    int
	ID      string
	Method  string
	Target  string
	Headers []string // "Name: value", as written (an empty value keeps its space)
	Expect  string   // "deny" (any 4xx, no secrets in the body), "200", "403", ...
	Note    string
}

// Status returns the exact status the case expects, if it names one.
func (c Case) Status() (int, bool) {
	n, err := strconv.Atoi(c.Expect)
	return n, err == nil
}

func (c Case) String() string {
	return fmt.Sprintf("%s %s %s %q (%s)", c.ID, c.Method, c.Target, c.Headers, c.Note)
}

// ParseCases reads the TSV: '#' lines are comments, the "id" line is the
// column header; columns are id, method, target, headers (" | " between
// them, "-" for none), expect, note.
func ParseCases(r io.Reader) ([]Case, error) {
	var cases []Case
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "id\t") {
			continue
		}
		c, err := parseCase(n, line)
		if err != nil {
			return nil, err
		}
		cases = append(cases, c)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read cases: %w", err)
	}
	return cases, nil
}

func parseCase(n int, line string) (Case, error) {
	f := strings.Split(line, "\t")
	if len(f) != 6 {
		return Case{}, fmt.Errorf("cases line %d: %d columns, want 6: %q", n, len(f), line)
	}
	c := Case{Line: n, ID: f[0], Method: f[1], Target: f[2], Expect: f[4], Note: f[5]}
	if f[3] != "-" {
		c.Headers = strings.Split(f[3], " | ")
	}
	return c, nil
}

// CasesPath finds bypass-cases.tsv: $IMDSGUARD_BYPASS_CASES, else the
// contract's own ../shared/bypass-cases.tsv beside the repository when it is
// there (the newest cases), else the snapshot committed in
// tools/testdata, so a clone anywhere runs every case.
func CasesPath(root string) string {
	if p := os.Getenv(CasesEnv); p != "" {
		return p
	}
	shared := filepath.Join(filepath.Dir(root), "shared", "bypass-cases.tsv")
	if _, err := os.Stat(shared); err == nil {
		return shared
	}
	return filepath.Join(root, "tools", "testdata", "bypass-cases.tsv")
}

// LoadCases parses the bypass cases.
func (e *Env) LoadCases() []Case {
	e.T.Helper()
	p := CasesPath(e.Root)
	f, err := os.Open(p)
	if err != nil {
		e.T.Fatalf("open bypass cases: %v", err)
	}
	defer f.Close()
	cases, err := ParseCases(f)
	if err != nil {
		e.T.Fatalf("%s: %v", p, err)
	}
	if len(cases) == 0 {
		e.T.Fatalf("%s: no cases", p)
	}
	return cases
}
