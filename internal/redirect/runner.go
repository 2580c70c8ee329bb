package redirect

// runner is what this package needs from iptables for one address family.
// The first group is the part of *iptables.IPTables
// (github.com/coreos/go-iptables) that reads and removes rules; the backend
// adds what go-iptables lacks: writes in one transaction per table (Apply),
// reads of several chains at once (ListChains), the change stamp and the
// in-process digest, Save, TableExists, DropTable. A fake that keeps real
// state stands in for it in tests (fake_test.go).
type runner interface {
	ChainExists(table, chain string) (bool, error)
	ClearChain(table, chain string) error // flush; creates the chain when missing
	DeleteChain(table, chain string) error
	List(table, chain string) ([]string, error) // iptables -S CHAIN
	Exists(table, chain string, rulespec ...string) (bool, error)
	Delete(table, chain string, rulespec ...string) error

	// ListChains returns the "-A" lines of each of chains in table that
	// exists, in as few reads as the backend allows (verify.go).
	ListChains(table string, chains []string) (map[string][]string, error)

	// Digest fingerprints the rules of chains in table without an
	// iptables process (nf_tables: digest_linux.go); "" when the backend
	// cannot (legacy).
	Digest(table string, chains []string) (string, error)

	// ListWithCounters is iptables -S CHAIN -v: each rule with "-c PKTS BYTES".
	ListWithCounters(table, chain string) ([]string, error)

	// Apply runs iptables-restore lines on table in one --noflush
	// transaction (":CHAIN - [0:0]" makes or flushes a chain; "-A", "-I",
	// "-D"): Install writes each table's fixes at once, and moves a jump
	// to the top without a moment where it is missing.
	Apply(table string, lines []string) error
	// Save returns iptables-save's text: the tables that exist, and only
	// those. Reading it never creates a table (a plain -S on a legacy
	// table would), so Install, Remove and Status look here first, and
	// Keep compares it with what Install left (one read per tick).
	Save() (string, error)
	// DropTable deletes a whole table; only nf_tables can (CanDropTables).
	// Remove uses it for tables that Install created, and nothing else.
	DropTable(table string) error
	CanDropTables() bool

	// Stamp marks the rule set's state without reading a rule: Keep reads
	// the rules only when it differs from the stamp of its last look.
	Stamp() (stamp, error)
	// TableExists reports whether table exists; asking creates nothing
	// (a plain -S would create a legacy table).
	TableExists(table string) (bool, error)
}

// stamp is a cheap mark of a rule set's state. With exact set (nf_tables'
// generation, which every committed change increments) equal stamps prove
// that nothing changed; without (the legacy tables' headers: number of
// entries, size, hook offsets) a change that keeps every size, such as one
// rule replaced by another of the same length, could go unseen, so Keep
// also reads the rules every backstop interval.
type stamp struct {
	value string
	exact bool
	by    string // the process that made the last change, when known
}

// familyRunner is the runner of one address family.
type familyRunner struct {
	fam family
	ipt runner
}
