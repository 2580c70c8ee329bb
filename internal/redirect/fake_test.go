package redirect

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
)

// fakeIPT is an iptables of one family that keeps real state, keyed
// "table/chain", and behaves like the kernel where this package relies on
// it: a jump to a missing chain is refused (and checking one is an error), a referenced or non-empty chain
// cannot be deleted, deleting a missing rule fails. Its mode models the two
// backends: "nft" creates a table only when something is written to it and
// can drop tables; "legacy" instantiates a table on any access, even a read,
// and never drops one. Save renders iptables-save text.
type fakeIPT struct {
	mu     sync.Mutex
	mode   string
	tables map[string]*fakeTable
	calls  []string         // "Op table/chain", in order
	fail   map[string]error // "Op table/chain" → injected error
	// beforeStamp, when set, runs at the start of every Stamp with the
	// number of that Stamp (from 1): an outside change racing with a read.
	beforeStamp func(n int)
	stamps      int
	packets     map[string]uint64 // "table/chain" → the packet counter of each of its rules
}

type fakeTable struct {
	chains map[string]*fakeChain
	order  []string // chains in creation order (built-ins first)
}

type fakeChain struct {
	policy string // "" for a user chain
	rules  []string
}

var fakeBuiltins = map[string][]string{
	"nat":    {"PREROUTING", "INPUT", "OUTPUT", "POSTROUTING"},
	"filter": {"INPUT", "FORWARD", "OUTPUT"},
}

var fakeTargets = []string{"ACCEPT", "DROP", "RETURN", "REJECT", "REDIRECT", "MASQUERADE", "DNAT"}

var errFakeNotExist = errors.New("No chain/target/match by that name")

func newFakeIPT(mode string) *fakeIPT {
	return &fakeIPT{mode: mode, tables: map[string]*fakeTable{}, fail: map[string]error{}, packets: map[string]uint64{}}
}

// call logs an operation and returns the injected error for it, if any.
func (f *fakeIPT) call(op, table, chain string) error {
	key := op + " " + table + "/" + chain
	f.calls = append(f.calls, key)
	return f.fail[key]
}

// table returns a table, creating it when create is set or in legacy mode.
func (f *fakeIPT) table(name string, create bool) *fakeTable {
	t := f.tables[name]
	if t == nil && (create || f.mode == "legacy") {
		t = &fakeTable{chains: map[string]*fakeChain{}}
		for _, b := range fakeBuiltins[name] {
			t.chains[b] = &fakeChain{policy: "ACCEPT"}
			t.order = append(t.order, b)
		}
		f.tables[name] = t
	}
	return t
}

func (f *fakeIPT) chain(table, chain string, create bool) *fakeChain {
	t := f.table(table, create)
	if t == nil {
		return nil
	}
	return t.chains[chain]
}

func (f *fakeIPT) ChainExists(table, chain string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ChainExists", table, chain); err != nil {
		return false, err
	}
	return f.chain(table, chain, false) != nil, nil
}

func (f *fakeIPT) NewChain(table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("NewChain", table, chain); err != nil {
		return err
	}
	t := f.table(table, true)
	if t.chains[chain] != nil {
		return fmt.Errorf("chain %s already exists", chain)
	}
	t.chains[chain] = &fakeChain{}
	t.order = append(t.order, chain)
	return nil
}

func (f *fakeIPT) ClearChain(table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("ClearChain", table, chain); err != nil {
		return err
	}
	t := f.table(table, true)
	if c := t.chains[chain]; c != nil {
		c.rules = nil
		return nil
	}
	t.chains[chain] = &fakeChain{}
	t.order = append(t.order, chain)
	return nil
}

func (f *fakeIPT) DeleteChain(table, chain string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("DeleteChain", table, chain); err != nil {
		return err
	}
	t := f.table(table, false)
	if t == nil || t.chains[chain] == nil {
		return errFakeNotExist
	}
	c := t.chains[chain]
	switch {
	case c.policy != "":
		return fmt.Errorf("cannot delete built-in chain %s", chain)
	case len(c.rules) > 0:
		return fmt.Errorf("directory not empty: chain %s has rules", chain)
	case f.referenced(t, chain):
		return fmt.Errorf("too many links: chain %s is referenced", chain)
	}
	delete(t.chains, chain)
	t.order = slices.DeleteFunc(t.order, func(n string) bool { return n == chain })
	return nil
}

func (f *fakeIPT) referenced(t *fakeTable, chain string) bool {
	for _, c := range t.chains {
		for _, r := range c.rules {
			if strings.HasSuffix(r, "-j "+chain) {
				return true
			}
		}
	}
	return false
}

func (f *fakeIPT) List(table, chain string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("List", table, chain); err != nil {
		return nil, err
	}
	c := f.chain(table, chain, false)
	if c == nil {
		return nil, errFakeNotExist
	}
	out := []string{"-N " + chain}
	if c.policy != "" {
		out = []string{"-P " + chain + " " + c.policy}
	}
	for _, r := range c.rules {
		out = append(out, "-A "+chain+" "+r)
	}
	return out, nil
}

// ListWithCounters is List with "-c PACKETS BYTES" on every rule line.
func (f *fakeIPT) ListWithCounters(table, chain string) ([]string, error) {
	lines, err := f.List(table, chain)
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, l := range lines {
		if strings.HasPrefix(l, "-A ") {
			lines[i] = fmt.Sprintf("%s -c %d 0", l, f.packets[table+"/"+chain])
		}
	}
	return lines, err
}

func (f *fakeIPT) Exists(table, chain string, spec ...string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Exists", table, chain); err != nil {
		return false, err
	}
	c := f.chain(table, chain, false)
	if c == nil {
		return false, nil
	}
	// Like iptables -C: a jump to a missing chain is an error (exit 2).
	if err := f.checkTarget(f.tables[table], spec); err != nil {
		return false, err
	}
	return slices.Contains(c.rules, render(spec)), nil
}

// checkTarget refuses a jump to a chain that does not exist.
func (f *fakeIPT) checkTarget(t *fakeTable, spec []string) error {
	i := slices.Index(spec, "-j")
	if i < 0 || i+1 >= len(spec) {
		return nil
	}
	target := spec[i+1]
	if slices.Contains(fakeTargets, target) || t.chains[target] != nil {
		return nil
	}
	return fmt.Errorf("jump to %s: %w", target, errFakeNotExist)
}

func (f *fakeIPT) Insert(table, chain string, pos int, spec ...string) error {
	return f.write("Insert", table, chain, spec, func(c *fakeChain, r string) error {
		if pos < 1 || pos > len(c.rules)+1 {
			return fmt.Errorf("index of insertion too big")
		}
		c.rules = slices.Insert(c.rules, pos-1, r)
		return nil
	})
}

func (f *fakeIPT) Append(table, chain string, spec ...string) error {
	return f.write("Append", table, chain, spec, func(c *fakeChain, r string) error {
		c.rules = append(c.rules, r)
		return nil
	})
}

func (f *fakeIPT) Delete(table, chain string, spec ...string) error {
	return f.write("Delete", table, chain, spec, func(c *fakeChain, r string) error {
		i := slices.Index(c.rules, r)
		if i < 0 {
			return errors.New("Bad rule (does a matching rule exist in that chain?)")
		}
		c.rules = slices.Delete(c.rules, i, i+1)
		return nil
	})
}

// write applies a rule change; writing to a built-in chain creates its
// table (nft creates base chains on demand).
func (f *fakeIPT) write(op, table, chain string, spec []string, apply func(*fakeChain, string) error) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call(op, table, chain); err != nil {
		return err
	}
	builtin := slices.Contains(fakeBuiltins[table], chain)
	t := f.table(table, builtin)
	if t == nil || t.chains[chain] == nil {
		return errFakeNotExist
	}
	if op != "Delete" {
		if err := f.checkTarget(t, spec); err != nil {
			return err
		}
	}
	return apply(t.chains[chain], render(spec))
}

func (f *fakeIPT) Save() (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Save", "", ""); err != nil {
		return "", err
	}
	return f.render(), nil
}

// render is the state as iptables-save text; called with f.mu held.
func (f *fakeIPT) render() string {
	var b strings.Builder
	b.WriteString("# Generated by fake\n")
	for _, name := range slices.Sorted(maps.Keys(f.tables)) {
		t := f.tables[name]
		fmt.Fprintf(&b, "*%s\n", name)
		for _, cn := range t.order {
			pol := t.chains[cn].policy
			if pol == "" {
				pol = "-"
			}
			fmt.Fprintf(&b, ":%s %s [0:0]\n", cn, pol)
		}
		for _, cn := range t.order {
			for _, r := range t.chains[cn].rules {
				fmt.Fprintf(&b, "-A %s %s\n", cn, r)
			}
		}
		b.WriteString("COMMIT\n# Completed\n")
	}
	return b.String()
}

// Stamp is exact in nft mode, as nf_tables' generation is: the state
// itself. In legacy mode it is the number of rules per table, as coarse
// as the x_tables headers (a same-size change goes unseen).
func (f *fakeIPT) Stamp() (stamp, error) {
	f.mu.Lock()
	f.stamps++
	hook, n := f.beforeStamp, f.stamps
	f.mu.Unlock()
	if hook != nil {
		hook(n)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Stamp", "", ""); err != nil {
		return stamp{}, err
	}
	if f.mode == "nft" {
		return stamp{value: f.render(), exact: true, by: "fake"}, nil
	}
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(f.tables)) {
		n := 0
		for _, c := range f.tables[name].chains {
			n += 1 + len(c.rules)
		}
		fmt.Fprintf(&b, "%s:%d ", name, n)
	}
	return stamp{value: b.String()}, nil
}

// TableExists never creates the table, in either mode.
func (f *fakeIPT) TableExists(table string) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("TableExists", table, ""); err != nil {
		return false, err
	}
	_, ok := f.tables[table]
	return ok, nil
}

func (f *fakeIPT) DropTable(table string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("DropTable", table, ""); err != nil {
		return err
	}
	if f.mode != "nft" {
		return errors.ErrUnsupported
	}
	delete(f.tables, table)
	return nil
}

func (f *fakeIPT) CanDropTables() bool { return f.mode == "nft" }

// Helpers for tests: outside changes, like an admin's iptables commands.

// flush is `iptables -t table -F`: every rule of every chain goes.
func (f *fakeIPT) flush(table string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if t := f.tables[table]; t != nil {
		for _, c := range t.chains {
			c.rules = nil
		}
	}
}

// flushChain is `iptables -t table -F chain`.
func (f *fakeIPT) flushChain(table, chain string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.chain(table, chain, false); c != nil {
		c.rules = nil
	}
}

// deleteRuleContaining deletes the first rule of table/chain containing s.
func (f *fakeIPT) deleteRuleContaining(table, chain, s string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.chain(table, chain, false)
	if c == nil {
		return false
	}
	i := slices.IndexFunc(c.rules, func(r string) bool { return strings.Contains(r, s) })
	if i < 0 {
		return false
	}
	c.rules = slices.Delete(c.rules, i, i+1)
	return true
}

// insertForeign is someone else's rule, inserted at the top of a chain (as
// dockerd, kube-proxy or Calico put their jumps).
func (f *fakeIPT) insertForeign(table, chain, rule string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.chain(table, chain, true)
	c.rules = slices.Insert(c.rules, 0, rule)
}

// addForeign is someone else's rule, appended to a built-in chain.
func (f *fakeIPT) addForeign(table, chain, rule string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.chain(table, chain, true)
	c.rules = append(c.rules, rule)
}

// writes returns the logged calls that change state.
func (f *fakeIPT) writes() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		op, _, _ := strings.Cut(c, " ")
		switch op {
		case "NewChain", "ClearChain", "DeleteChain", "Insert", "Append", "Delete", "DropTable", "Apply":
			out = append(out, c)
		}
	}
	return out
}

func (f *fakeIPT) resetCalls() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = nil
}

func (f *fakeIPT) callsSnapshot() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// save is Save for tests that cannot fail.
func (f *fakeIPT) save() string {
	f.mu.Lock()
	calls := f.calls
	f.mu.Unlock()
	s, _ := f.Save()
	f.mu.Lock()
	f.calls = calls
	f.mu.Unlock()
	return s
}

// fakeLo is lo's addresses, kept like the kernel keeps them: adding one
// that is there fails, deleting one that is not fails.
type fakeLo struct {
	mu     sync.Mutex
	addrs  []loAddr
	writes []string // "add ADDR" / "del ADDR", in order
}

func (l *fakeLo) List() ([]loAddr, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.addrs), nil
}

func (l *fakeLo) Add(a loAddr) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if hasAddr(l.addrs, a.Prefix.Addr()) {
		return errors.New("file exists")
	}
	l.addrs = append(l.addrs, a)
	l.writes = append(l.writes, "add "+a.String())
	return nil
}

func (l *fakeLo) Del(a loAddr) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	i := slices.IndexFunc(l.addrs, func(b loAddr) bool { return b.Prefix == a.Prefix })
	if i < 0 {
		return errors.New("cannot assign requested address")
	}
	l.addrs = slices.Delete(l.addrs, i, i+1)
	l.writes = append(l.writes, "del "+a.String())
	return nil
}

// del is an outside `ip addr del` of address a.
func (l *fakeLo) del(a netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := len(l.addrs)
	l.addrs = slices.DeleteFunc(l.addrs, func(b loAddr) bool { return b.Prefix.Addr() == a })
	return len(l.addrs) < n
}

func (l *fakeLo) snapshot() []loAddr {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.addrs)
}

// newChainForTest is someone else's `iptables -t table -N chain`.
func (f *fakeIPT) newChainForTest(table, chain string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.table(table, true)
	if _, ok := t.chains[chain]; !ok {
		t.chains[chain] = &fakeChain{}
		t.order = append(t.order, chain)
	}
}

// topIs reports whether the first rule of table/chain is rule.
func (f *fakeIPT) topIs(table, chain, rule string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.chain(table, chain, false)
	return c != nil && len(c.rules) > 0 && c.rules[0] == rule
}

// ListChains lists each chain as the nft backend does (the fake has no
// whole-table read to save).
func (f *fakeIPT) ListChains(table string, chains []string) (map[string][]string, error) {
	return listEach(f, table, chains)
}

// Digest: in nft mode the chains' rules themselves (as nf_tables' handles
// and expressions would change), none in legacy mode.
func (f *fakeIPT) Digest(table string, chains []string) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.call("Digest", table, ""); err != nil {
		return "", err
	}
	if f.mode != "nft" {
		return "", nil
	}
	var b strings.Builder
	for _, name := range chains {
		if c := f.chain(table, name, false); c != nil {
			fmt.Fprintf(&b, "%s: %q\n", name, c.rules)
		}
	}
	return b.String(), nil
}

// Apply runs iptables-restore lines as the real --noflush transaction
// does (":CHAIN" makes or flushes, "-A", "-I CHAIN 1", "-D"), logged as
// one call. Unlike the kernel's, a failing line leaves the lines before it
// applied.
func (f *fakeIPT) Apply(table string, lines []string) error {
	f.mu.Lock()
	err := f.call("Apply", table, "")
	logged := len(f.calls)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	defer func() {
		f.mu.Lock()
		f.calls = f.calls[:logged]
		f.mu.Unlock()
	}()
	for _, l := range lines {
		args := splitArgs(l)
		var err error
		switch {
		case strings.HasPrefix(l, ":"):
			name := strings.TrimPrefix(args[0], ":")
			if ok, _ := f.ChainExists(table, name); ok {
				err = f.ClearChain(table, name)
			} else {
				err = f.NewChain(table, name)
			}
		case args[0] == "-A":
			err = f.Append(table, args[1], args[2:]...)
		case args[0] == "-I" && args[2] == "1":
			err = f.Insert(table, args[1], 1, args[3:]...)
		case args[0] == "-D":
			err = f.Delete(table, args[1], args[2:]...)
		default:
			err = fmt.Errorf("fake Apply: cannot read %q", l)
		}
		if err != nil {
			return fmt.Errorf("line %q: %w", l, err)
		}
	}
	return nil
}
