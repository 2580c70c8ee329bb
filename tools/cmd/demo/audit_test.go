package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// logLines are imdsguard log lines as the daemon writes them (abridged).
const logLines = `{"level":"INFO","msg":"imdsguard serving","listen":["127.0.0.1:8989"]}
{"level":"INFO","msg":"imds request","caller":{"class":"host","source":"127.0.0.1","uid":999,"user":"alice","pid":7,"comm":"curl"},"method":"GET","path":"/latest/meta-data/instance-id","version":"v1","decision":"allow","rule":"others","reason":"allowed","status":200}
{"level":"INFO","msg":"imds request","caller":{"class":"container","source":"198.51.100.2","uid":0,"user":"root","pid":8,"comm":"aws"},"method":"PUT","path":"/latest/api/token","version":"","decision":"allow","rule":"others","reason":"token","status":200}
{"level":"WARN","msg":"imds request","caller":{"class":"host","source":"127.0.0.1","uid":0,"user":"root","pid":9,"comm":"curl"},"method":"GET","path":"/latest/meta-data/instance-id","version":"","decision":"reject","rule":"","reason":"carries X-Forwarded-For","status":403}
{"level":"WARN","msg":"imds request","caller":{"class":"host","source":"127.0.0.1","pid":10,"comm":"curl"},"method":"GET","path":"","target":"/%zz","version":"","decision":"reject","rule":"","reason":"carries X-Forwarded-For","status":400}`

func TestAudit(t *testing.T) {
	var log []map[string]any
	for _, l := range strings.Split(logLines, "\n") {
		var ev map[string]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("%s: %v", l, err)
		}
		log = append(log, ev)
	}
	evs := auditEvents(log)
	want := [][]string{
		{"alice (host)", "curl", "GET /latest/meta-data/instance-id", "v1", "allow", "200", "others"},
		{"root (container 198.51.100.2)", "aws", "PUT /latest/api/token", "token", "allow", "200", "others"},
		{"root (host)", "curl", "GET /latest/meta-data/instance-id", "-", "reject", "403", "-"},
		{"? (host)", "curl", "GET /%zz", "-", "reject", "400", "-"},
	}
	if len(evs) != len(want) {
		t.Fatalf("%d audit events, want %d", len(evs), len(want))
	}
	for i, ev := range evs {
		if got := auditRow(ev); !slices.Equal(got, want[i]) {
			t.Errorf("row %d: got %q, want %q", i, got, want[i])
		}
	}
	if got := refusals(evs); !slices.Equal(got, []string{"why reject: carries X-Forwarded-For"}) {
		t.Errorf("refusals %q", got)
	}
}

func TestTable(t *testing.T) {
	var b strings.Builder
	p := &printer{w: &b}
	p.table([]string{"a", "bb"}, [][]string{{"xxx", "y"}, {"z", "w"}}, nil)
	want := "    a    bb\n    xxx  y\n    z    w\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
