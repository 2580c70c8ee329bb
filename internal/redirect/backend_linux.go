package redirect

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/coreos/go-iptables/iptables"
)

// tools are the binaries of one backend for one family.
type tools struct {
	iptables, save, restore string
}

// backendTools: the binaries of each backend, per family. Both backends are
// named explicitly (never the `iptables` alternative), so rules never end up
// split between nf_tables and the legacy tables of one namespace.
var backendTools = map[string]map[string]tools{
	"nft": {
		"ipv4": {"iptables-nft", "iptables-nft-save", "iptables-nft-restore"},
		"ipv6": {"ip6tables-nft", "ip6tables-nft-save", "ip6tables-nft-restore"},
	},
	"legacy": {
		"ipv4": {"iptables-legacy", "iptables-legacy-save", "iptables-legacy-restore"},
		"ipv6": {"ip6tables-legacy", "ip6tables-legacy-save", "ip6tables-legacy-restore"},
	},
}

// lockWait is how long an iptables command waits for the xtables lock.
const lockWait = 5 // seconds

// openBackend picks the backend (detecting it when name is "") and opens a
// runner for every family this host has. A configured family whose tools
// are missing is an error; an unconfigured one is only left out.
func openBackend(name string, cfg Config, log *slog.Logger) (string, []familyRunner, error) {
	switch name {
	case "":
		var err error
		if name, err = detectBackend(log); err != nil {
			return "", nil, err
		}
	case "nft", "legacy":
	default:
		return "", nil, fmt.Errorf("redirect: unknown iptables backend %q (want nft, legacy or empty to detect)", name)
	}
	wanted := map[family]bool{}
	for _, f := range cfg.families() {
		wanted[f] = true
	}
	var fams []familyRunner
	for _, f := range []family{familyV4, familyV6} {
		x, err := newXtables(name, f)
		if err != nil {
			if wanted[f] {
				return "", nil, err
			}
			log.Debug("family not available", "family", f.Name, "err", err)
			continue
		}
		fams = append(fams, familyRunner{fam: f, ipt: x})
	}
	return name, fams, nil
}

// xtables is go-iptables for one backend and family, plus what it lacks,
// done with the same backend's save/restore tools: reading the whole rule
// set, moving a rule to the top in one step, dropping a table.
type xtables struct {
	*iptables.IPTables
	fam           family
	save, restore string
	dropTables    bool // nf_tables: a table can be deleted
}

func newXtables(backend string, f family) (*xtables, error) {
	t := backendTools[backend][f.Name]
	path, err := findTool(t.iptables)
	if err != nil {
		return nil, err
	}
	proto := iptables.ProtocolIPv4
	if f == familyV6 {
		proto = iptables.ProtocolIPv6
	}
	ipt, err := iptables.New(iptables.IPFamily(proto), iptables.Path(path), iptables.Timeout(lockWait))
	if err != nil {
		return nil, fmt.Errorf("redirect: %s: %w", path, err)
	}
	x := &xtables{IPTables: ipt, fam: f, dropTables: backend == "nft"}
	if x.save, err = findTool(t.save); err != nil {
		return nil, err
	}
	if x.restore, err = findTool(t.restore); err != nil {
		return nil, err
	}
	return x, nil
}

// findTool looks name up in PATH, then in the sbin directories a daemon's
// PATH may lack.
func findTool(name string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, dir := range []string{"/usr/sbin", "/sbin", "/usr/local/sbin"} {
		p := dir + "/" + name
		if st, err := os.Stat(p); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("redirect: %s not found (install iptables)", name)
}

// Save runs the backend's iptables-save. It prints only tables that exist
// and creates none (legacy reads /proc/net/ip{,6}_tables_names).
func (x *xtables) Save() (string, error) {
	return run(x.save, nil)
}

// Stamp: nf_tables' generation (exact), or the headers of the legacy
// tables (stamp_linux.go).
func (x *xtables) Stamp() (stamp, error) {
	if !x.dropTables {
		v, err := legacyStamp(x.fam)
		return stamp{value: v}, err
	}
	gen, by, err := nftGeneration()
	return stamp{value: fmt.Sprintf("nft generation %d", gen), exact: true, by: by}, err
}

// TableExists asks nf_tables, or reads the legacy table list; neither
// creates the table.
func (x *xtables) TableExists(table string) (bool, error) {
	if x.dropTables {
		return nftTableExists(x.fam, table)
	}
	names, err := legacyTables(x.fam)
	return names[table], err
}

// ListChains: iptables-nft answers -S CHAIN from that chain alone, so one
// listing per chain; iptables-legacy copies the whole table from the kernel
// for any command, so one iptables-legacy-save -t TABLE (one copy instead
// of one per chain).
func (x *xtables) ListChains(table string, chains []string) (map[string][]string, error) {
	if x.dropTables {
		return listEach(x, table, chains)
	}
	save, err := run(x.save, nil, "-t", table)
	if err != nil {
		return nil, err
	}
	return chainsInSave(save, table, chains), nil
}

// Digest: nf_tables' rules read in-process; legacy has none (every read
// copies the whole table: no cheaper than ListChains).
func (x *xtables) Digest(table string, chains []string) (string, error) {
	if !x.dropTables {
		return "", nil
	}
	return nftDigest(x.fam, table, chains)
}

// CanDropTables: only nf_tables tables can be deleted.
func (x *xtables) CanDropTables() bool { return x.dropTables }

// DropTable deletes an nf_tables table: iptables-nft-restore, given the
// table with no chains and without --noflush, deletes it and recreates
// nothing. Remove calls it only for a table it checked holds nothing but
// the ChainMadeTable marker.
func (x *xtables) DropTable(table string) error {
	if !x.dropTables {
		return fmt.Errorf("drop table %s: %w: legacy tables live as long as their namespace", table, errors.ErrUnsupported)
	}
	_, err := run(x.restore, strings.NewReader("*"+table+"\nCOMMIT\n"))
	return err
}

// Apply runs lines (iptables-restore syntax: ":CHAIN - [0:0]" makes or
// flushes a chain, "-A", "-I", "-D") on table in one iptables-restore
// --noflush transaction: all of them or none.
func (x *xtables) Apply(table string, lines []string) error {
	in := "*" + table + "\n" + strings.Join(lines, "\n") + "\nCOMMIT\n"
	_, err := run(x.restore, strings.NewReader(in), "--noflush", "--wait", strconv.Itoa(lockWait))
	return err
}

// run runs a tool to completion and returns its standard output.
func run(path string, stdin *strings.Reader, args ...string) (string, error) {
	var out, errb bytes.Buffer
	cmd := exec.Command(path, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s: %w: %s", path, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}
