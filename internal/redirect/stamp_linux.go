package redirect

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strings"
	"unsafe"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// Change stamps: how Keep learns, without reading any rule, that nothing in
// the rule set can have changed since its last look (see Stamp in
// runner.go). Each call acts in the network namespace of the calling
// thread, as the iptables tools do.

// nftGeneration asks nf_tables for its rule-set generation (NFT_MSG_GETGEN):
// one number per network namespace that every committed change of any
// nf_tables table (iptables-nft's, nft's, anyone's) increments. by names
// the process that made the last change, for logs.
func nftGeneration() (gen uint32, by string, err error) {
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETGEN, 0)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: unix.AF_UNSPEC, Version: unix.NFNETLINK_V0})
	msgs, err := req.Execute(unix.NETLINK_NETFILTER, 0)
	if err != nil {
		return 0, "", fmt.Errorf("nf_tables generation: %w", err)
	}
	if len(msgs) == 0 || len(msgs[0]) < nl.SizeofNfgenmsg {
		return 0, "", errors.New("nf_tables generation: empty answer")
	}
	attrs, err := nl.ParseRouteAttr(msgs[0][nl.SizeofNfgenmsg:])
	if err != nil {
		return 0, "", fmt.Errorf("nf_tables generation: %w", err)
	}
	found := false
	for _, a := range attrs {
		switch {
		case a.Attr.Type == unix.NFTA_GEN_ID && len(a.Value) >= 4:
			gen, found = binary.BigEndian.Uint32(a.Value), true
		case a.Attr.Type == unix.NFTA_GEN_PROC_NAME:
			by = strings.TrimRight(string(a.Value), "\x00")
		}
	}
	if !found {
		return 0, "", errors.New("nf_tables generation: no NFTA_GEN_ID in the answer")
	}
	return gen, by, nil
}

// nftTableExists reports whether the nf_tables table of family f (ip or
// ip6, where iptables-nft keeps its tables) exists; asking creates nothing.
func nftTableExists(f family, table string) (bool, error) {
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETTABLE, 0)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: nfproto(f), Version: unix.NFNETLINK_V0})
	req.AddData(nl.NewRtAttr(unix.NFTA_TABLE_NAME, nl.ZeroTerminated(table)))
	_, err := req.Execute(unix.NETLINK_NETFILTER, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("nf_tables table %s: %w", table, err)
	}
	return true, nil
}

func nfproto(f family) uint8 {
	if f == familyV6 {
		return unix.NFPROTO_IPV6
	}
	return unix.NFPROTO_IPV4
}

// legacyTables lists the x_tables tables of family f that exist in this
// namespace (ip_tables_names, as iptables-legacy-save reads it).
func legacyTables(f family) (map[string]bool, error) {
	// thread-self: the namespace of this thread, which may differ from
	// the process's (/proc/net is the process's).
	name := "/proc/thread-self/net/ip_tables_names"
	if f == familyV6 {
		name = "/proc/thread-self/net/ip6_tables_names"
	}
	out := map[string]bool{}
	file, err := os.Open(name)
	if errors.Is(err, os.ErrNotExist) {
		return out, nil // the module is not loaded: no table at all
	}
	if err != nil {
		return nil, err
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		out[strings.TrimSpace(sc.Text())] = true
	}
	return out, sc.Err()
}

// xtInfo is struct ipt_getinfo (and ip6t_getinfo, the same layout).
type xtInfo struct {
	Name       [32]byte
	ValidHooks uint32
	HookEntry  [5]uint32
	Underflow  [5]uint32
	NumEntries uint32
	Size       uint32
}

// soGetInfo is IPT_SO_GET_INFO and IP6T_SO_GET_INFO.
const soGetInfo = 64

// legacyTableInfo reads the header of an x_tables table (IPT_SO_GET_INFO):
// its number of entries, its size and where each hook's rules start. It
// copies no rule, so it costs the same on an empty table and on one of
// 60,000 rules. Call it only for a table legacyTables lists: asking
// instantiates a missing table.
func legacyTableInfo(f family, table string) (xtInfo, error) {
	domain, level := unix.AF_INET, unix.SOL_IP
	if f == familyV6 {
		domain, level = unix.AF_INET6, unix.SOL_IPV6
	}
	var info xtInfo
	fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
	if err != nil {
		return info, fmt.Errorf("x_tables %s info: %w", table, err)
	}
	defer unix.Close(fd)
	copy(info.Name[:], table)
	size := uint32(unsafe.Sizeof(info))
	_, _, errno := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), uintptr(level), soGetInfo,
		uintptr(unsafe.Pointer(&info)), uintptr(unsafe.Pointer(&size)), 0)
	if errno != 0 {
		return info, fmt.Errorf("x_tables %s info: %w", table, errno)
	}
	return info, nil
}

// legacyStamp is the header of every x_tables table of family f: any
// change that adds, removes or resizes a rule changes it. It is not exact
// (a rule replaced by one of the same size in the same place keeps it), so
// Keep still reads the rules now and then (Rules.backstop).
func legacyStamp(f family) (string, error) {
	names, err := legacyTables(f)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for _, t := range tables() {
		if !names[t] {
			fmt.Fprintf(&b, "%s:absent ", t)
			continue
		}
		info, err := legacyTableInfo(f, t)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s:%d:%d:%v:%v ", t, info.NumEntries, info.Size, info.HookEntry, info.Underflow)
	}
	return b.String(), nil
}
