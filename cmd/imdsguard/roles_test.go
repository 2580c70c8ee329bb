package main

import (
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/admin"
)

func TestPrintRoles(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	var b strings.Builder
	printRoles(&b, []admin.RoleSession{
		{Role: "arn:aws:iam::123456789012:role/payments-api", Session: "payments.api-1", Expiration: now.Add(45 * time.Minute),
			Containers: []string{"0123456789abcdef0123", "fedcba9876543210"}},
		{Role: "arn:aws:iam::123456789012:role/x", Session: "ci", LastError: "sts denied (AccessDenied): no"},
	}, now)
	for _, want := range []string{
		"ROLE", "payments.api-1", "2030-01-01T00:45:00Z (in 45m0s)", "0123456789ab,fedcba987654", "sts denied (AccessDenied): no",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, b.String())
		}
	}
	b.Reset()
	printRoles(&b, nil, now)
	if !strings.Contains(b.String(), "no role sessions") {
		t.Errorf("empty: %q", b.String())
	}
}
