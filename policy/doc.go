// Package policy decides, for one metadata request, whether the caller may
// have it: which rule applies to the caller, whether the canonical path is
// allowed under that rule, and whether an IMDSv1 request is upgraded or
// rejected.
//
// It is pure: the configuration is validated (Config.Validate) and compiled
// (Compile) once, user and group names are resolved at that moment and never
// while deciding, and Policy.Decide does no I/O and keeps no state. Every
// Decision names the rule and the pattern that made it and says why in one
// sentence, so that the audit event and `imdsguard policy explain` can show it.
//
// Paths are decided in canonical form (package internal/canon makes them),
// relative to the version prefix: "/", "/meta-data/iam/info", "/api/token".
// A path that is not canonical is denied whatever the policy says.
package policy
