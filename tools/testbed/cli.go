package testbed

import (
	"os"
	"strconv"
	"strings"

	"github.com/imdsguard/imdsguard/internal/testenv"
)

// Command-line clients, by absolute path.
const (
	CurlPath        = "/usr/bin/curl"
	EC2MetadataPath = "/usr/bin/ec2-metadata" // amazon-ec2-utils (bash + curl, IMDSv2)
	EC2MetadataCU   = "/usr/bin/ec2metadata"  // cloud-utils (python, IMDSv2)
)

// curlStatusMark starts the last line curl prints (-w).
const curlStatusMark = "\nHTTP "

// Curl runs curl against url: a plain GET (an IMDSv1 request) unless extra
// says otherwise (-X PUT -H ...), at most 5 s, printing the body and then a
// line "HTTP <code>" (000 when nothing answered). See CurlStatus.
func (e *Env) Curl(url string, extra ...string) Cmd {
	e.T.Helper()
	e.requireFile(CurlPath)
	args := append([]string{"-s", "-S", "-g", "--max-time", "5", "-w", curlStatusMark + "%{http_code}\n"}, extra...)
	return Cmd{Name: "curl", Path: CurlPath, Args: append(args, url), Env: e.ClientEnv()}
}

// CurlStatus splits what Curl printed into the body and the HTTP status (0
// when curl printed none).
func CurlStatus(r Result) (body string, status int) {
	out := strings.TrimSuffix(r.Stdout, "\n")
	i := strings.LastIndex(out, curlStatusMark)
	if i < 0 {
		if rest, ok := strings.CutPrefix(out, curlStatusMark[1:]); ok {
			n, _ := strconv.Atoi(rest)
			return "", n
		}
		return out, 0
	}
	n, _ := strconv.Atoi(out[i+len(curlStatusMark):])
	return out[:i], n
}

// EC2Metadata runs amazon-ec2-utils' `ec2-metadata -i` (IMDSv2 through
// curl, endpoint fixed at http://169.254.169.254); it prints
// "instance-id: i-...".
func (e *Env) EC2Metadata() Cmd {
	e.T.Helper()
	e.requireFile(EC2MetadataPath)
	return Cmd{Name: "ec2-metadata", Path: EC2MetadataPath, Args: []string{"-i"}, Env: e.ClientEnv()}
}

// EC2MetadataCloudUtils runs cloud-utils' `ec2metadata --url BASE/latest
// --instance-id` (IMDSv2; its token URL is fixed at 169.254.169.254, and
// its default /2009-04-04 is a version AEMM lacks, hence --url). base ""
// is http://169.254.169.254.
func (e *Env) EC2MetadataCloudUtils(base string) Cmd {
	e.T.Helper()
	e.requireFile(EC2MetadataCU)
	if base == "" {
		base = "http://" + IMDSv4
	}
	return Cmd{
		Name: "ec2metadata", Path: EC2MetadataCU,
		Args: []string{"--url", strings.TrimSuffix(base, "/") + "/latest", "--instance-id"},
		Env:  e.ClientEnv(),
	}
}

// Python runs a python3 script (Debian's python3, with boto and botocore)
// with args; it skips the test when python3 is missing.
func (e *Env) Python(name, script string, args ...string) Cmd {
	e.T.Helper()
	return e.python(name, script, args...)
}

func (e *Env) requireFile(path string) {
	e.T.Helper()
	if _, err := os.Stat(path); err != nil {
		testenv.Skipf(e.T, "no %s: run scripts/install-test-deps.sh", path)
	}
}
