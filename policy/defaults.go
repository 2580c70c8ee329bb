package policy

// DefaultConfig returns the policy used when no configuration file exists
// (docs/configuration.md shows it): root may read everything;
// every other caller, including one whose user could not be attested, may
// read the non-secret metadata but not the instance role credentials, the
// identity credentials, the user data, or the signatures of the instance
// identity document. IMDSv1 is upgraded for all.
func DefaultConfig() Config {
	return Config{
		Mode:    modeEnforce,
		Default: defaultDeny,
		Rules: []RuleConfig{
			{
				Name:   "root",
				Match:  &MatchConfig{Users: []string{"root"}},
				Allow:  []string{"/**"},
				IMDSv1: v1Upgrade,
			},
			{
				Name:   "others",
				Match:  &MatchConfig{},
				Allow:  []string{"/**"},
				Deny:   defaultSecrets(),
				IMDSv1: v1Upgrade,
			},
		},
	}
}

// defaultSecrets returns the patterns the default policy denies to every
// caller but root.
func defaultSecrets() []string {
	return []string{
		"/meta-data/iam/**",
		"/meta-data/identity-credentials/**",
		"/user-data",
		"/dynamic/instance-identity/signature",
		"/dynamic/instance-identity/pkcs7",
		"/dynamic/instance-identity/rsa2048",
	}
}
