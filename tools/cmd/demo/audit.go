package main

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// maxRequest is the widest request column of an audit table.
const maxRequest = 62

// auditHeader names the columns of an audit table; decisionCol is the
// index of "decision".
func auditHeader() []string {
	return []string{"caller", "comm", "request", "version", "decision", "status", "rule"}
}

const decisionCol = 4

// auditEvents are the audit events ("msg": "imds request") among
// imdsguard's log lines (decoded JSON).
func auditEvents(log []map[string]any) []map[string]any {
	var evs []map[string]any
	for _, ev := range log {
		if ev["msg"] == "imds request" {
			evs = append(evs, ev)
		}
	}
	return evs
}

// auditRow is one event as a row of auditHeader's columns.
func auditRow(ev map[string]any) []string {
	c, _ := ev["caller"].(map[string]any)
	path := str(ev["path"])
	if path == "" {
		path = str(ev["target"]) // a target that had no canonical path
	}
	request := str(ev["method"]) + " " + path
	if len(request) > maxRequest {
		request = request[:maxRequest-3] + "..."
	}
	version := str(ev["version"])
	switch {
	case version == "" && strings.HasSuffix(path, "/api/token"):
		version = "token"
	case version == "":
		version = "-"
	}
	return []string{callerName(c), str(c["comm"]), request, version,
		str(ev["decision"]), fmt.Sprint(ev["status"]), cmp.Or(str(ev["rule"]), "-")}
}

// refusals are the reasons imdsguard gave for the events it did not
// allow, each once: "why deny: denied by rule others: ...".
func refusals(evs []map[string]any) []string {
	var out []string
	for _, ev := range evs {
		if d := str(ev["decision"]); d != "allow" {
			why := "why " + d + ": " + str(ev["reason"])
			if !slices.Contains(out, why) {
				out = append(out, why)
			}
		}
	}
	return out
}

// callerName is who asked, as the audit event says: "alice (host)", or
// "uid 0 (container 198.51.100.2)".
func callerName(c map[string]any) string {
	who := str(c["user"])
	if who == "" {
		who = "?"
		if uid, ok := c["uid"]; ok {
			who = fmt.Sprintf("uid %v", uid)
		}
	}
	where := str(c["class"])
	if where == "container" {
		where += " " + str(c["source"])
	}
	return who + " (" + where + ")"
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

// paintDecision paints the decision column: green when "allow", red
// otherwise.
func (p *printer) paintDecision(col int, cell string) string {
	switch {
	case col != decisionCol:
		return cell
	case cell == "allow":
		return p.paint(green, cell)
	}
	return p.paint(red, cell)
}
