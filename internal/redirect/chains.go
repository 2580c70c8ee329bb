package redirect

// Chain names. They are fixed forever: a newer imdsguard must find, restore
// and remove what an older one installed.
const (
	ChainOut = "IMDSGUARD-OUT" // nat, from OUTPUT: local metadata traffic
	ChainPre = "IMDSGUARD-PRE" // nat, from PREROUTING: container metadata traffic
	ChainIn  = "IMDSGUARD-IN"  // filter, from INPUT: who may reach the proxy port
	ChainFwd = "IMDSGUARD-FWD" // filter, from FORWARD: routed metadata traffic is reset
	// ChainFence is filter, from OUTPUT: local metadata traffic that escaped
	// the redirect (an outside nat flush) is reset, not sent to IMDS.
	ChainFence = "IMDSGUARD-FENCE"

	// ChainMadeTable is an empty chain that marks a table imdsguard created
	// (nf_tables only), so that Remove can delete the table again and leave
	// iptables-save as it was. See DropTable in runner.go.
	ChainMadeTable = "IMDSGUARD-MADE-TABLE"
)

// Mark is the firewall mark (SO_MARK) of the daemon's own upstream sockets:
// packets that carry it are never redirected, so the proxy does not loop
// back to itself.
const Mark = 0x1d5a

const (
	tableNAT    = "nat"
	tableFilter = "filter"
)

// chain is one own chain: where it lives, which built-in chain jumps to it,
// and the pure function that builds its rules.
type chain struct {
	Table string
	Name  string
	Hook  string // the built-in chain holding the single jump here
	rules func(family, params) []rule
}

// chains is every own chain, in install order (Remove goes backwards).
var chains = []chain{
	{Table: tableNAT, Name: ChainOut, Hook: "OUTPUT", rules: outRules},
	{Table: tableNAT, Name: ChainPre, Hook: "PREROUTING", rules: preRules},
	{Table: tableFilter, Name: ChainIn, Hook: "INPUT", rules: inRules},
	{Table: tableFilter, Name: ChainFwd, Hook: "FORWARD", rules: fwdRules},
	{Table: tableFilter, Name: ChainFence, Hook: "OUTPUT", rules: fenceRules},
}

// tables lists the tables the chains live in, each once, in install order.
func tables() []string {
	var out []string
	for _, c := range chains {
		if len(out) == 0 || out[len(out)-1] != c.Table {
			out = append(out, c.Table)
		}
	}
	return out
}
