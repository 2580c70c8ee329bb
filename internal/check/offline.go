package check

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// Offline is what `imdsguard check --offline` looks at: an image being
// baked (Packer, EC2 Image Builder's validate phase), not a running
// instance. It needs no network, no IMDS, no rules and no running
// systemd: the binary runs, the configuration loads and validates, the
// units are installed and enabled (read from the enablement symlinks, as
// a chroot has them), and the state a first boot needs.
type Offline struct {
	// Root is the image's root directory ("/" on the image itself).
	Root    string
	Version string // the binary's version
	Config  string // the configuration file's path (inside Root)
	// ConfigErr is why the configuration did not load or validate;
	// ConfigDefault: no file, the built-in defaults apply.
	ConfigErr     error
	ConfigDefault bool
	KeyFile       string // tokens.key_file (inside Root)
}

// Where systemd looks for units and tmpfiles.d entries, most local first.
var (
	unitDirs     = []string{"/etc/systemd/system", "/usr/lib/systemd/system", "/lib/systemd/system"}
	tmpfilesDirs = []string{"/etc/tmpfiles.d", "/usr/lib/tmpfiles.d", "/lib/tmpfiles.d"}
)

// Units imdsguard ships.
const (
	ServiceUnit = "imdsguard.service"
	SocketUnit  = "imdsguard.socket"
)

// Run runs the offline checks.
func (o Offline) Run() Report {
	return Report{
		{Name: "the imdsguard binary runs", Pass: true, Detail: "imdsguard " + o.Version},
		o.config(), o.unit(ServiceUnit), o.unit(SocketUnit), o.state(),
	}
}

func (o Offline) at(p string) string { return filepath.Join(o.Root, p) }

// systemctl is the command line that acts on Root.
func (o Offline) systemctl() string {
	if o.Root == "" || filepath.Clean(o.Root) == "/" {
		return "systemctl"
	}
	return "systemctl --root=" + o.Root
}

func (o Offline) config() Result {
	r := Result{Name: "the configuration file loads and validates"}
	switch {
	case o.ConfigErr != nil:
		r.Detail = o.ConfigErr.Error()
		r.Fix = "correct " + o.Config + " (imdsguard policy check " + o.Config + " lists every problem)"
	case o.ConfigDefault:
		r.Pass, r.Detail = true, "no file at "+o.Config+": the built-in defaults apply"
	default:
		r.Pass, r.Detail = true, o.Config+" loads and validates"
	}
	return r
}

// unit: name is installed in a unit directory, not masked, and enabled:
// a symlink in the .wants directory of a target its [Install] section
// names, pointing at an installed unit file.
func (o Offline) unit(name string) Result {
	r := Result{Name: name + " is installed and enabled"}
	fix := o.systemctl() + " enable " + name + "  (works without a running systemd)"
	file := o.findUnit(name)
	if file == "" {
		r.Detail = name + " is in none of " + strings.Join(unitDirs, ", ")
		r.Fix = "install the package (or scripts/bake-ami.sh); then " + fix
		return r
	}
	if dst, err := os.Readlink(o.at(path.Join("/etc/systemd/system", name))); err == nil && dst == "/dev/null" {
		r.Detail = name + " is masked (/etc/systemd/system/" + name + " -> /dev/null)"
		r.Fix = o.systemctl() + " unmask " + name + "; " + fix
		return r
	}
	targets, err := wantedBy(o.at(file))
	if err != nil {
		r.Detail = err.Error()
		r.Fix = "reinstall the package"
		return r
	}
	var lines []string
	for _, t := range targets {
		link := path.Join("/etc/systemd/system", t+".wants", name)
		if o.linksToUnit(link) {
			r.Pass, r.Detail = true, file+"; enabled: "+link
			return r
		}
		lines = append(lines, link+": absent")
	}
	r.Detail = file + "; not enabled (read from the enablement symlinks): " + strings.Join(lines, ", ")
	r.Fix = fix
	return r
}

// findUnit returns the first unit directory path holding name, or "".
func (o Offline) findUnit(name string) string {
	for _, d := range unitDirs {
		p := path.Join(d, name)
		if st, err := os.Stat(o.at(p)); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return ""
}

// linksToUnit: link (inside Root) exists and resolves, within Root, to a
// regular file.
func (o Offline) linksToUnit(link string) bool {
	dst, err := os.Readlink(o.at(link))
	if err != nil {
		st, err := os.Stat(o.at(link)) // a copied file instead of a symlink also enables
		return err == nil && st.Mode().IsRegular()
	}
	if !path.IsAbs(dst) {
		dst = path.Join(path.Dir(link), dst)
	}
	st, err := os.Stat(o.at(dst))
	return err == nil && st.Mode().IsRegular()
}

// wantedBy reads the WantedBy= targets of a unit file's [Install] section.
func wantedBy(file string) ([]string, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, fmt.Errorf("read unit: %w", err)
	}
	defer f.Close()
	var targets []string
	section := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		switch {
		case strings.HasPrefix(l, "["):
			section = l
		case section == "[Install]" && strings.HasPrefix(l, "WantedBy="):
			targets = append(targets, strings.Fields(strings.TrimPrefix(l, "WantedBy="))...)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read unit %s: %w", file, err)
	}
	if len(targets) == 0 {
		return nil, fmt.Errorf("unit %s: no WantedBy= in [Install]: it cannot be enabled", file)
	}
	return targets, nil
}

// state: what the first boot needs, and nothing an image must not carry.
// The state directory (tokens.key_file's) is made by systemd at the first
// start (StateDirectory=imdsguard, 0700) when absent; a token key already
// there would be shared by every instance launched from the image; the
// tmpfiles.d entry makes /run/xtables.lock at boot.
func (o Offline) state() Result {
	r := Result{Name: "state for the first boot (token key, state directory, tmpfiles.d)", Pass: true}
	var lines []string
	dir := filepath.Dir(o.KeyFile)
	switch st, err := os.Stat(o.at(dir)); {
	case errors.Is(err, fs.ErrNotExist):
		lines = append(lines, dir+": absent; systemd creates it at the first start (StateDirectory=imdsguard, mode 0700)")
	case err != nil:
		r.Pass, r.Fix = false, "run imdsguard check --offline as root"
		lines = append(lines, dir+": "+err.Error())
	case !st.IsDir():
		r.Pass, r.Fix = false, "remove "+dir+": the token key's directory must be a directory"
		lines = append(lines, dir+": not a directory")
	default:
		lines = append(lines, fmt.Sprintf("%s: present, mode %04o", dir, st.Mode().Perm()))
	}
	if _, err := os.Stat(o.at(o.KeyFile)); err == nil {
		r.Warn = r.Pass
		lines = append(lines, o.KeyFile+": present: every instance launched from this image would share one token key (a token minted on one verifies on all)")
		if r.Pass {
			r.Fix = "rm " + o.KeyFile + " before the image is taken: the daemon makes a key of its own at its first start"
		}
	} else {
		lines = append(lines, o.KeyFile+": absent; the daemon makes it at its first start")
	}
	lines = append(lines, o.tmpfiles(&r))
	r.Detail = strings.Join(lines, "\n")
	return r
}

// tmpfiles says where imdsguard's tmpfiles.d entry is; a missing one
// turns r into a WARN.
func (o Offline) tmpfiles(r *Result) string {
	for _, d := range tmpfilesDirs {
		p := path.Join(d, "imdsguard.conf")
		if _, err := os.Stat(o.at(p)); err == nil {
			return p + ": present (/run/xtables.lock at boot, for iptables-legacy)"
		}
	}
	if r.Pass && !r.Warn {
		r.Warn, r.Fix = true, "install systemd/imdsguard.tmpfiles as /usr/lib/tmpfiles.d/imdsguard.conf (the package does)"
	}
	return "imdsguard.conf: in none of " + strings.Join(tmpfilesDirs, ", ") + " (iptables-legacy hosts need /run/xtables.lock at boot)"
}
