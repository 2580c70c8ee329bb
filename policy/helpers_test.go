package policy

import (
	"errors"
	"net/netip"
	"os"
	"testing"

	"github.com/goccy/go-yaml"
)

// exampleYAML is the example policy with a rule for each kind of caller
// (testdata/example-policy.yaml, which proxy's explain tests read too).
var exampleYAML = func() string {
	b, err := os.ReadFile("testdata/example-policy.yaml")
	if err != nil {
		panic(err)
	}
	return string(b)
}()

// decodeConfig decodes the policy section of a configuration file the way
// the loader does: strictly.
func decodeConfig(t testing.TB, doc string) Config {
	t.Helper()
	var file struct {
		Policy Config `yaml:"policy"`
	}
	if err := yaml.UnmarshalWithOptions([]byte(doc), &file, yaml.DisallowUnknownField()); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return file.Policy
}

// fakeNames resolves names from maps and counts lookups.
type fakeNames struct {
	users, groups map[string]uint32
	lookups       int
}

func (f *fakeNames) LookupUser(name string) (uint32, error) {
	f.lookups++
	if id, ok := f.users[name]; ok {
		return id, nil
	}
	return 0, errors.New("user: unknown user " + name)
}

func (f *fakeNames) LookupGroup(name string) (uint32, error) {
	f.lookups++
	if id, ok := f.groups[name]; ok {
		return id, nil
	}
	return 0, errors.New("group: unknown group " + name)
}

// hostNames is the passwd/group database of the test host.
func hostNames() *fakeNames {
	return &fakeNames{
		users:  map[string]uint32{"root": 0, "app": 1000, "alice": 1001},
		groups: map[string]uint32{"root": 0, "legacy": 2000, "wheel": 10},
	}
}

// mustCompile compiles c with names and fails the test on an error.
func mustCompile(t testing.TB, c Config, names Names) *Policy {
	t.Helper()
	p, _, err := Compile(c, names)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return p
}

// Callers used across the tests.
var (
	rootCaller    = Caller{UIDKnown: true, UID: 0, GIDs: []uint32{0}, Source: netip.MustParseAddr("127.0.0.1")}
	appCaller     = Caller{UIDKnown: true, UID: 1000, GIDs: []uint32{1000}, Source: netip.MustParseAddr("127.0.0.1")}
	legacyCaller  = Caller{UIDKnown: true, UID: 1500, GIDs: []uint32{1500, 2000}, Source: netip.MustParseAddr("127.0.0.1")}
	aliceCaller   = Caller{UIDKnown: true, UID: 1001, GIDs: []uint32{1001}, Source: netip.MustParseAddr("10.0.0.9")}
	unknownCaller = Caller{UIDKnown: false, UID: 0, GIDs: []uint32{0}, Source: netip.MustParseAddr("127.0.0.1")}
	container     = Caller{Source: netip.MustParseAddr("172.17.0.5"), Interface: "docker0", Container: true}
	containerRoot = Caller{UIDKnown: true, UID: 0, GIDs: []uint32{0}, Source: netip.MustParseAddr("172.17.0.6"), Interface: "docker0", Container: true}
	mappedCont    = Caller{Source: netip.MustParseAddr("::ffff:172.17.0.5"), Interface: "docker0", Container: true}
	otherCont     = Caller{Source: netip.MustParseAddr("172.18.0.5"), Interface: "br-1234", Container: true}
)

// secretPaths are the canonical forms of the `deny` rows of
// shared/bypass-cases.tsv, plus case variants.
var secretPaths = []string{
	"/meta-data/iam/security-credentials",
	"/meta-data/iam/security-credentials/baskinc-role",
	"/meta-data/identity-credentials/ec2/security-credentials/ec2-instance",
	"/user-data",
	"/dynamic/instance-identity/signature",
	"/meta-data/iam/info",
	"/meta-data/IAM/info",
	"/Meta-Data/iam/security-credentials/baskinc-role",
	"/META-DATA/IAM/SECURITY-CREDENTIALS",
	"/meta-data/Identity-Credentials/ec2/security-credentials/ec2-instance",
	"/USER-DATA",
	"/dynamic/instance-identity/SIGNATURE",
	"/Dynamic/Instance-Identity/Signature",
}
