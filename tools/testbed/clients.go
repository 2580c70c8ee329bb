package testbed

import (
	"os"
	"strings"

	"github.com/imdsguard/imdsguard/internal/testenv"
)

// Debian's clients, by absolute path: a pyenv copy shadows them on PATH.
const (
	Python = "/usr/bin/python3"
	AWSCLI = "/usr/bin/aws"
)

// ClientEnv is a clean environment for clients: HOME and the AWS config and
// credentials files are empty ones in the Env's directory (no profile, no
// keys, so credentials can only come from IMDS), region us-east-1, no pager,
// no proxies. extra is appended ("NAME=value").
func (e *Env) ClientEnv(extra ...string) []string {
	e.T.Helper()
	home := e.Path("client-home")
	cfg := e.WriteFile("client-home/aws-config", "")
	creds := e.WriteFile("client-home/aws-credentials", "")
	env := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"LANG=C.UTF-8",
		"HOME=" + home,
		"AWS_CONFIG_FILE=" + cfg,
		"AWS_SHARED_CREDENTIALS_FILE=" + creds,
		"AWS_DEFAULT_REGION=us-east-1",
		"AWS_PAGER=",
	}
	return append(env, extra...)
}

// IMDSClient runs bin/imdsclient: -sdk v1|v2, the endpoint ("" = the SDK's
// default), then the rest (-get PATH or -creds ...).
func (e *Env) IMDSClient(sdk, endpoint string, args ...string) Cmd {
	e.T.Helper()
	e.RequireBins("imdsclient")
	a := append([]string{"-sdk", sdk, "-endpoint", endpoint}, args...)
	return Cmd{Name: "imdsclient " + sdk, Path: e.Bin("imdsclient"), Args: a, Env: e.ClientEnv()}
}

// botoScript prints the instance id from boto 2.49's
// get_instance_metadata(url, timeout, num_retries); it exits 1 when boto
// returned nothing (its way of failing: {} or None). num_retries is the
// number of attempts: 0 would make no request at all.
const botoScript = `import sys, boto.utils
m = boto.utils.get_instance_metadata(url=sys.argv[1], timeout=2, num_retries=1)
if not m or "instance-id" not in m:
    sys.exit("boto: no instance metadata: %r" % (m,))
print(m["instance-id"])
`

// Boto runs python3-boto (IMDSv1 only) against endpoint ("" = its default
// http://169.254.169.254) and prints the instance id.
func (e *Env) Boto(endpoint string) Cmd {
	e.T.Helper()
	if endpoint == "" {
		endpoint = "http://169.254.169.254"
	}
	return e.python("boto", botoScript, strings.TrimSuffix(endpoint, "/"))
}

// botocoreScript fetches the role credentials with botocore 1.29's
// InstanceMetadataFetcher and prints the access key. The fetcher does not
// read AWS_EC2_METADATA_SERVICE_ENDPOINT itself (the session's config store
// does): the endpoint goes in its config dict.
const botocoreScript = `import sys
from botocore.utils import InstanceMetadataFetcher as F
cfg = {"ec2_metadata_service_endpoint": sys.argv[1]} if sys.argv[1] else {}
c = F(timeout=2, num_attempts=1, config=cfg).retrieve_iam_role_credentials()
if not c:
    sys.exit("botocore: no credentials: %r" % (c,))
print(c["access_key"])
`

// Botocore runs python3-botocore (IMDSv2) against endpoint ("" = its
// default) and prints the AccessKeyId of the role credentials.
func (e *Env) Botocore(endpoint string) Cmd {
	e.T.Helper()
	return e.python("botocore", botocoreScript, endpoint)
}

func (e *Env) python(name, script string, args ...string) Cmd {
	e.T.Helper()
	if _, err := os.Stat(Python); err != nil {
		testenv.Skipf(e.T, "no %s: run scripts/install-test-deps.sh", Python)
	}
	a := append([]string{"-c", script}, args...)
	return Cmd{Name: name, Path: Python, Args: a, Env: e.ClientEnv()}
}

// AWSCLIExport runs `aws configure export-credentials --format env` with
// AWS_EC2_METADATA_SERVICE_ENDPOINT=endpoint ("" = the CLI's default); it
// prints "export AWS_ACCESS_KEY_ID=..." lines.
func (e *Env) AWSCLIExport(endpoint string) Cmd {
	e.T.Helper()
	if _, err := os.Stat(AWSCLI); err != nil {
		testenv.Skipf(e.T, "no %s: run scripts/install-test-deps.sh", AWSCLI)
	}
	var extra []string
	if endpoint != "" {
		extra = append(extra, "AWS_EC2_METADATA_SERVICE_ENDPOINT="+strings.TrimSuffix(endpoint, "/")+"/")
	}
	return Cmd{
		Name: "aws", Path: AWSCLI,
		Args: []string{"configure", "export-credentials", "--format", "env"},
		Env:  e.ClientEnv(extra...),
	}
}
