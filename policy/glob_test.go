package policy

import "testing"

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern string
		yes, no []string
	}{
		{"/", []string{"/"}, []string{"/meta-data", "/a/b"}},
		{"/**", []string{"/", "/meta-data", "/meta-data/iam/info", "/api/token"}, nil},
		{"/**/", []string{"/", "/x/y"}, nil},
		{"/meta-data/**", []string{"/meta-data", "/meta-data/x", "/meta-data/x/y", "/META-DATA/Iam/Info"},
			[]string{"/", "/meta-datax", "/meta-dat", "/user-data", "/dynamic/meta-data"}},
		{"/meta-data/iam/**", []string{"/meta-data/iam", "/meta-data/iam/info", "/meta-data/IAM/info", "/Meta-Data/iam/security-credentials/baskinc-role"},
			[]string{"/meta-data", "/meta-data/iamx", "/meta-data/ia", "/meta-data/placement/iam", "/iam"}},
		{"/meta-data/iam", []string{"/meta-data/iam", "/meta-data/IAM"}, []string{"/meta-data/iam/info", "/meta-data", "/meta-data/iam2"}},
		{"/meta-data/iam/", []string{"/meta-data/iam", "/meta-data/Iam"}, []string{"/meta-data/iam/info"}},
		{"/user-data", []string{"/user-data", "/USER-DATA", "/User-Data"}, []string{"/user-data/x", "/user-dat", "/user-data2", "/"}},
		{"/meta-data/*", []string{"/meta-data/x", "/meta-data/instance-id"}, []string{"/meta-data", "/meta-data/x/y"}},
		{"/*", []string{"/meta-data", "/user-data"}, []string{"/", "/a/b"}},
		{"/*/*", []string{"/a/b"}, []string{"/a", "/a/b/c", "/"}},
		{"/meta-data/iam/security-credentials/team-*", []string{
			"/meta-data/iam/security-credentials/team-", "/meta-data/iam/security-credentials/team-a", "/meta-data/iam/security-credentials/TEAM-Blue"},
			[]string{"/meta-data/iam/security-credentials/team", "/meta-data/iam/security-credentials/xteam-a", "/meta-data/iam/security-credentials/team-a/b"}},
		{"/a/*-role", []string{"/a/x-role", "/a/-role", "/a/x-y-ROLE"}, []string{"/a/x-rolex", "/a/role", "/a/x/y-role"}},
		{"/a/*b*c*", []string{"/a/bc", "/a/xbyczz", "/a/abcabc", "/a/BC"}, []string{"/a/cb", "/a/b", "/a/x/bc"}},
		{"/a/x*x", []string{"/a/xx", "/a/xax", "/a/xxx"}, []string{"/a/x", "/a/xa"}},
		{"/**/security-credentials", []string{"/security-credentials", "/meta-data/iam/security-credentials", "/a/security-credentials"},
			[]string{"/meta-data/iam/security-credentials/role", "/"}},
		{"/**/iam/**", []string{"/iam", "/meta-data/iam", "/meta-data/iam/info", "/x/y/iam/z"}, []string{"/meta-data/iamx", "/"}},
		{"/meta-data/**/info", []string{"/meta-data/info", "/meta-data/iam/info", "/meta-data/a/b/c/info"}, []string{"/meta-data/info/x", "/info"}},
		{"/**/**", []string{"/", "/a", "/a/b"}, nil},
		{"/a/**/b/**/c", []string{"/a/b/c", "/a/x/b/y/c", "/a/b/b/c/c", "/a/b/x/c/b/c"}, []string{"/a/c", "/a/b", "/a/c/b", "/a/b/c/d"}},
		{"/dynamic/instance-identity/signature", []string{"/dynamic/instance-identity/signature", "/DYNAMIC/INSTANCE-IDENTITY/SIGNATURE"},
			[]string{"/dynamic/instance-identity/document", "/dynamic/instance-identity"}},
		{"/x+y=z,w_v:u@t~s", []string{"/X+Y=Z,W_V:U@T~S"}, []string{"/x+y=z,w_v:u@t~"}},
	}
	for _, tt := range tests {
		p, err := parsePattern(tt.pattern)
		if err != nil {
			t.Fatalf("parsePattern(%q): %v", tt.pattern, err)
		}
		for _, path := range tt.yes {
			if !p.match(path) {
				t.Errorf("%q does not match %q, want match", tt.pattern, path)
			}
		}
		for _, path := range tt.no {
			if p.match(path) {
				t.Errorf("%q matches %q, want no match", tt.pattern, path)
			}
		}
	}
}
