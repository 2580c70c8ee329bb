package packertemplate

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imdsguard/imdsguard/internal/netnstest"
	"github.com/imdsguard/imdsguard/internal/testenv"
)

// Debian's packer (1.6.6) validates and formats the template. It predates
// the plugin split: its amazon-ebs is the one built into the core, and its
// HCL2 knows neither required_plugins nor the amazon plugin's newer
// arguments. unsupported166 lists exactly what it refuses; the test
// validates the template without those (and only those), after checking
// that each is in the template and that 1.6.6 refuses each one alone.
//
// Packer runs in a network namespace with nothing but lo (unshare --net),
// with a HOME, a plugin path and a configuration directory of its own,
// checkpoint off and no AWS credentials: `packer validate` needs none and
// can reach nothing, neither AWS nor checkpoint.hashicorp.com.

var unsupported166 = []Construct{
	{
		Block: "packer", Nested: "required_plugins",
		Why: "required_plugins (and packer init) came with Packer 1.7, when the builders left the core; " +
			`1.6.6: Blocks of type "required_plugins" are not expected here`,
	},
	{
		Block: "source", Labels: []string{"amazon-ebs"}, Attr: "imds_support",
		Why: "the AMI's IMDS support is an argument of the amazon plugin, unknown to 1.6.6's built-in amazon-ebs; " +
			`1.6.6: An argument named "imds_support" is not expected here`,
	},
	{
		Block: "source", Labels: []string{"amazon-ebs"}, Nested: "metadata_options",
		Why: "the build instance's metadata options are a block of the amazon plugin, unknown to 1.6.6's built-in amazon-ebs; " +
			`1.6.6: Blocks of type "metadata_options" are not expected here`,
	},
}

// refusal is what 1.6.6 says of a construct it cannot parse.
func refusal(c Construct) string {
	if c.Attr != "" {
		return fmt.Sprintf("An argument named %q is not expected here", c.Attr)
	}
	return fmt.Sprintf("Blocks of type %q are not expected here", c.Nested)
}

// packerRun is packer, in a network namespace of its own, with dir as its
// HOME and working directory.
type packerRun struct {
	t   *testing.T
	dir string
}

func newPackerRun(t *testing.T) packerRun {
	t.Helper()
	netnstest.RequireRoot(t)
	for _, tool := range []string{"packer", "unshare", "ip"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Skipf(t, "%s not found: apt-get install packer util-linux iproute2 (scripts/install-test-deps.sh does)", tool)
		}
	}
	p := packerRun{t: t, dir: t.TempDir()}
	for _, d := range []string{"home", "plugins", "config", "cache", "tmp"} {
		if err := os.Mkdir(filepath.Join(p.dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return p
}

// env is packer's whole environment: nothing inherited (no AWS_*
// variables, no proxies), everything it writes kept under p.dir.
func (p packerRun) env() []string {
	return []string{
		"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=" + filepath.Join(p.dir, "home"),
		"CHECKPOINT_DISABLE=1",
		"PACKER_PLUGIN_PATH=" + filepath.Join(p.dir, "plugins"),
		"PACKER_CONFIG_DIR=" + filepath.Join(p.dir, "config"),
		"PACKER_CACHE_DIR=" + filepath.Join(p.dir, "cache"),
		"TMPDIR=" + filepath.Join(p.dir, "tmp"),
		"PACKER_NO_COLOR=1",
	}
}

// run runs name args inside a new network namespace (unshare --net) and
// returns its output and error.
func (p packerRun) run(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "unshare", append([]string{"--net", "--", name}, args...)...)
	cmd.Dir, cmd.Env, cmd.WaitDelay = p.dir, p.env(), time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		err = fmt.Errorf("unshare --net %s %s: %w", name, strings.Join(args, " "), err)
	}
	return string(out), err
}

// TestPackerNamespaceIsolated: where packer runs there is no interface but
// lo, so nothing it tries can leave the machine.
func TestPackerNamespaceIsolated(t *testing.T) {
	p := newPackerRun(t)
	out, err := p.run("ip", "-o", "link", "show")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	var links []string
	for l := range strings.Lines(out) {
		if f := strings.Fields(l); len(f) > 1 {
			links = append(links, strings.TrimSuffix(f[1], ":"))
		}
	}
	if !slices.Equal(links, []string{"lo"}) {
		t.Errorf("interfaces in packer's namespace: %q, want lo alone\n%s", links, out)
	}
}

// TestPackerValidate: packer 1.6.6 validates the template less
// unsupported166, refuses each of those constructs on its own, and finds
// the whole template formatted as `packer fmt` writes it.
func TestPackerValidate(t *testing.T) {
	p := newPackerRun(t)
	src := readRepoFile(t, templateFile)
	args := p.packages(t)
	t.Run("validate without the 1.6.6 refusals", func(t *testing.T) {
		copy := p.strip(t, src, unsupported166)
		if out, err := p.run("packer", append(append([]string{"validate"}, args...), copy)...); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	})
	for i, c := range unsupported166 {
		t.Run("1.6.6 refuses "+c.String(), func(t *testing.T) {
			others := slices.Delete(slices.Clone(unsupported166), i, i+1)
			copy := p.strip(t, src, others)
			out, err := p.run("packer", append(append([]string{"validate"}, args...), copy)...)
			if err == nil || !strings.Contains(out, refusal(c)) {
				t.Errorf("packer validate with %s left in: err %v, want it refused (%q)\n%s", c, err, refusal(c), out)
			}
		})
	}
	t.Run("fmt -check", func(t *testing.T) {
		f := filepath.Join(p.dir, "formatted.pkr.hcl")
		if err := os.WriteFile(f, src, 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := p.run("packer", "fmt", "-check", "-diff", f); err != nil {
			t.Errorf("%s is not as packer fmt writes it: %v\n%s", templateFile, err, out)
		}
	})
}

// packages writes stand-ins for the two packages (the file provisioner
// checks that its source exists) and returns the -var arguments naming
// them.
func (p packerRun) packages(t *testing.T) []string {
	var args []string
	for _, name := range []string{"rpm_package", "deb_package"} {
		f := filepath.Join(p.dir, filepath.Base(testVars[name]))
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, "-var", name+"="+f)
	}
	return args
}

// strip writes src less cs to a new file and returns its path.
func (p packerRun) strip(t *testing.T, src []byte, cs []Construct) string {
	t.Helper()
	out, err := Strip(src, templateFile, cs)
	if err != nil {
		t.Fatal(err)
	}
	d, err := os.MkdirTemp(p.dir, "template")
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(d, "imdsguard.pkr.hcl")
	if err := os.WriteFile(f, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}
