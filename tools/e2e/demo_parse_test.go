package e2e

import (
	"regexp"
	"strconv"
	"strings"
)

// The demo's output (tools/cmd/demo) as the tests read it:
//
//	== N. title ==                 a step
//	[where, who] $ label   # note  a command, its output indented by 4
//	    (exit N)                   the last output line when it failed
//	  audit log (...):             an audit table: header, then one row per event
var (
	stepLine    = regexp.MustCompile(`^== (\d+)\. (.*) ==$`)
	commandLine = regexp.MustCompile(`^\[([^,\]]+), ([^\]]+)\] \$ (.*?)(   # .*)?$`)
	spaces      = regexp.MustCompile(`\s+`)
)

// demoStep is one step of the demo's output.
type demoStep struct {
	title    string
	commands []demoCommand
	audit    []string // audit table rows, runs of spaces made one
	notes    []string // the other lines, trimmed
}

// demoCommand is one command shown and its output.
type demoCommand struct {
	caller string // "host, imdstest-demo", "c1, root"
	label  string // the command as shown, without the note
	output []string
	exit   string // "exit 7", or "" when it succeeded
}

// parseDemo splits the demo's stdout into its steps, by number.
func parseDemo(out string) map[int]*demoStep {
	steps := map[int]*demoStep{}
	var cur *demoStep
	var cmd *demoCommand
	inAudit := false
	for _, line := range strings.Split(out, "\n") {
		if m := stepLine.FindStringSubmatch(line); m != nil {
			n, _ := strconv.Atoi(m[1])
			cur, cmd, inAudit = &demoStep{title: m[2]}, nil, false
			steps[n] = cur
			continue
		}
		if cur == nil {
			continue
		}
		switch m := commandLine.FindStringSubmatch(line); {
		case m != nil:
			cur.commands = append(cur.commands, demoCommand{caller: m[1] + ", " + m[2], label: m[3]})
			cmd, inAudit = &cur.commands[len(cur.commands)-1], false
		case strings.HasPrefix(line, "  audit log"):
			cmd, inAudit = nil, true
		case strings.HasPrefix(line, "    ") && inAudit:
			cur.audit = append(cur.audit, spaces.ReplaceAllString(strings.TrimSpace(line), " "))
		case strings.HasPrefix(line, "    ") && cmd != nil:
			cmd.add(strings.TrimPrefix(line, "    "))
		default:
			cmd, inAudit = nil, false
			cur.notes = append(cur.notes, strings.TrimSpace(line))
		}
	}
	return steps
}

// add records one output line, or the exit status.
func (c *demoCommand) add(line string) {
	if s, ok := strings.CutPrefix(line, "(exit "); ok {
		c.exit = "exit " + strings.TrimSuffix(s, ")")
		return
	}
	c.output = append(c.output, line)
}

// find returns the commands of the step run by caller whose label starts
// with prefix.
func (s *demoStep) find(caller, prefix string) []demoCommand {
	var out []demoCommand
	for _, c := range s.commands {
		if c.caller == caller && strings.HasPrefix(c.label, prefix) {
			out = append(out, c)
		}
	}
	return out
}

// hasRow reports whether an audit row of the step contains fields, in
// that order, separated by single spaces.
func (s *demoStep) hasRow(fields ...string) bool {
	want := strings.Join(fields, " ")
	for _, r := range s.audit {
		if strings.Contains(r, want) {
			return true
		}
	}
	return false
}
