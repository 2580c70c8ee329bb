package redirect

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// nftDigest fingerprints the rules of chains in an nf_tables table of
// family f, read in-process (NFT_MSG_GETRULE dumps filtered by table and
// chain: the kernel walks only those chains): each rule's handle, its
// expressions and its comment, without the counters' values (which move
// with traffic). Any rule added, deleted, moved or replaced there changes
// it; nothing in other chains does. A chain that does not exist adds
// nothing, as an empty one.
func nftDigest(f family, table string, chains []string) (string, error) {
	h := sha256.New()
	for _, c := range chains {
		fmt.Fprintf(h, "chain %s/%s\n", table, c)
		if err := digestChain(h, f, table, c); err != nil {
			return "", fmt.Errorf("digest %s/%s: %w", table, c, err)
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// digestChain adds one chain's rules to h.
func digestChain(h hash.Hash, f family, table, chain string) error {
	req := nl.NewNetlinkRequest(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_GETRULE, unix.NLM_F_DUMP)
	req.AddData(&nl.Nfgenmsg{NfgenFamily: nfproto(f), Version: unix.NFNETLINK_V0})
	req.AddData(nl.NewRtAttr(unix.NFTA_RULE_TABLE, nl.ZeroTerminated(table)))
	req.AddData(nl.NewRtAttr(unix.NFTA_RULE_CHAIN, nl.ZeroTerminated(chain)))
	var perr error
	err := req.ExecuteIter(unix.NETLINK_NETFILTER, 0, func(msg []byte) bool {
		if len(msg) < nl.SizeofNfgenmsg {
			return true
		}
		perr = digestRule(h, msg[nl.SizeofNfgenmsg:])
		return perr == nil
	})
	if err != nil {
		if err == unix.ENOENT {
			return nil // no such table or chain
		}
		return err
	}
	return perr
}

// digestRule adds one NFT_MSG_NEWRULE's attributes to h: the handle, the
// expressions (a counter's only by name) and the compat and user data.
func digestRule(h hash.Hash, b []byte) error {
	attrs, err := nl.ParseRouteAttr(b)
	if err != nil {
		return err
	}
	h.Write([]byte("rule\n"))
	for _, a := range attrs {
		switch a.Attr.Type & nlaTypeMask {
		case unix.NFTA_RULE_HANDLE, unix.NFTA_RULE_COMPAT, unix.NFTA_RULE_USERDATA:
			fmt.Fprintf(h, "%d:%x\n", a.Attr.Type&nlaTypeMask, a.Value)
		case unix.NFTA_RULE_EXPRESSIONS:
			if err := digestExprs(h, a.Value); err != nil {
				return err
			}
		}
	}
	return nil
}

// digestExprs adds a rule's expression list to h, leaving out the data of
// counter expressions.
func digestExprs(h hash.Hash, b []byte) error {
	elems, err := nl.ParseRouteAttr(b)
	if err != nil {
		return err
	}
	for _, e := range elems {
		parts, err := nl.ParseRouteAttr(e.Value)
		if err != nil {
			return err
		}
		name := ""
		for _, p := range parts {
			if p.Attr.Type&nlaTypeMask == unix.NFTA_EXPR_NAME {
				name = string(p.Value)
			}
		}
		fmt.Fprintf(h, "expr %q\n", name)
		if name == "counter\x00" || name == "counter" {
			continue
		}
		for _, p := range parts {
			if p.Attr.Type&nlaTypeMask != unix.NFTA_EXPR_NAME {
				fmt.Fprintf(h, "%d:%x\n", p.Attr.Type&nlaTypeMask, p.Value)
			}
		}
	}
	return nil
}

// nlaTypeMask strips an attribute type of its nested and byte-order flags.
const nlaTypeMask = ^uint16(unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
