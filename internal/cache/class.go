package cache

import (
	"strconv"
	"strings"
)

// Class is what a metadata path is to the cache: how long IMDS's answer for
// it stays true. docs/CACHE.md gives each class's lifetimes and reasons.
type Class uint8

const (
	Dynamic     Class = iota // can change while the instance runs; every path not named below
	Static                   // fixed for the boot
	Credentials              // role and identity credentials: good until their Expiration
	Event                    // spot, maintenance, rebalance and lifecycle notices
	Never                    // the token endpoint: the proxy answers it, the cache never holds it
)

var classNames = [...]string{Dynamic: "dynamic", Static: "static", Credentials: "credentials", Event: "event", Never: "never"}

func (c Class) String() string {
	if int(c) < len(classNames) {
		return classNames[c]
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// staticPaths are fixed for the boot (paths below the version prefix; each
// names itself and everything under it). A path that is not listed is
// Dynamic: a new or unknown path gets the short lifetime, never the long one.
var staticPaths = []string{
	"/meta-data/ami-id",
	"/meta-data/ami-launch-index",
	"/meta-data/ami-manifest-path",
	"/meta-data/ancestor-ami-ids",
	"/meta-data/block-device-mapping", // volumes present at launch or at the last start
	"/meta-data/instance-id",
	"/meta-data/instance-life-cycle",
	"/meta-data/instance-type", // changes only while stopped
	"/meta-data/kernel-id",
	"/meta-data/local-ipv4", // the primary interface's primary address
	"/meta-data/mac",        // the primary interface, which cannot be detached
	"/meta-data/placement",
	"/meta-data/product-codes",
	"/meta-data/ramdisk-id",
	"/meta-data/reservation-id",
	"/meta-data/services",
	"/meta-data/system",
	"/user-data",                 // changes only while stopped
	"/dynamic/instance-identity", // document, signature, pkcs7, rsa2048
}

// eventPaths announce something about to happen to the instance.
var eventPaths = []string{
	"/meta-data/spot",
	"/meta-data/events",
	"/meta-data/autoscaling", // target-lifecycle-state
}

// credentialDirs hold one credentials document per name.
var credentialDirs = []string{
	"/meta-data/iam/security-credentials/",
	"/meta-data/identity-credentials/ec2/security-credentials/",
}

// tokenPath is the token endpoint below the version prefix.
const tokenPath = "/api/token"

// ClassOf classifies a canonical path as sent upstream
// ("/latest/meta-data/instance-id", "/2009-04-04/user-data", "/"), by the
// part below the version prefix. Matching is case-sensitive, as IMDS is: a
// path in another case is not a static one.
func ClassOf(path string) Class {
	rel := strings.TrimSuffix(relOf(path), "/")
	switch {
	case rel == tokenPath:
		return Never
	case within(rel, eventPaths):
		return Event
	case within(rel, staticPaths):
		return Static
	}
	for _, dir := range credentialDirs {
		if name, ok := strings.CutPrefix(rel, dir); ok && name != "" && !strings.Contains(name, "/") {
			return Credentials
		}
	}
	return Dynamic
}

// relOf is path below its version segment: "/latest/meta-data/x" is
// "/meta-data/x"; "/", "/latest" and "/latest/" are "/".
func relOf(path string) string {
	if len(path) < 2 {
		return "/"
	}
	i := strings.IndexByte(path[1:], '/')
	if i < 0 {
		return "/"
	}
	return path[1+i:]
}

// within reports whether rel is one of prefixes or below one of them.
func within(rel string, prefixes []string) bool {
	for _, p := range prefixes {
		if rel == p || (strings.HasPrefix(rel, p) && rel[len(p)] == '/') {
			return true
		}
	}
	return false
}
