package main

import (
	"strings"

	"github.com/imdsguard/imdsguard/tools/testbed"
)

// client is a command as the demo shows it and runs it.
type client struct {
	label string // what the reader sees after "$"
	note  string // a comment after the label; "" for none
	cmd   testbed.Cmd
	lines int // output lines shown; 0: maxLines
}

// with returns c with a note.
func (c client) with(note string) client {
	c.note = note
	return c
}

// curl is a plain GET of url (IMDSv1) with extra options; curl prints the
// body and then "HTTP <status>" (testbed.Env.Curl).
func (d *demo) curl(url string, extra ...string) client {
	return client{label: shellWords(append(append([]string{"curl"}, extra...), url)), cmd: d.e.Curl(url, extra...)}
}

// boto is boto 2.49's get_instance_metadata(): IMDSv1 only.
func (d *demo) boto() client {
	return client{label: "python3 boto.utils.get_instance_metadata()", cmd: d.e.Boto("")}
}

// botocore fetches the role credentials as botocore does (IMDSv2).
func (d *demo) botocore() client {
	return client{label: "python3 botocore InstanceMetadataFetcher().retrieve_iam_role_credentials()", cmd: d.e.Botocore("")}
}

// sdk asks for the instance id with aws-sdk-go v1 (1.25, IMDSv1 only) or
// v2 (IMDSv2, no fallback to v1), through bin/imdsclient.
func (d *demo) sdk(version string) client {
	args := []string{"-get", "instance-id"}
	if version == "v2" {
		args = append([]string{"-no-fallback"}, args...)
	}
	c := d.e.IMDSClient(version, "", args...)
	return client{label: shellWords(append([]string{"imdsclient", "-sdk", version}, args...)), cmd: c}
}

// awsCLI is `aws configure export-credentials --format env`: the role
// credentials as the aws CLI finds them.
func (d *demo) awsCLI() client {
	return client{label: "aws configure export-credentials --format env", cmd: d.e.AWSCLIExport("")}
}

// ec2Metadata is amazon-ec2-utils' `ec2-metadata -i` (IMDSv2).
func (d *demo) ec2Metadata() client {
	return client{label: "ec2-metadata -i", cmd: d.e.EC2Metadata()}
}

// ec2metadata is cloud-utils' ec2metadata (IMDSv2), with --url because its
// default API version is one AEMM lacks.
func (d *demo) ec2metadata() client {
	c := d.e.EC2MetadataCloudUtils("")
	return client{label: shellWords(append([]string{"ec2metadata"}, c.Args...)), cmd: c}
}

// rulesStatus is `imdsguard rules status` for the running daemon's
// configuration; all its lines are shown.
func (d *demo) rulesStatus() client {
	return client{label: "imdsguard rules status", cmd: d.h.Rules(d.guard, "status"), lines: 100}
}

// shellWords joins args as a shell would read them back: words with spaces
// or quotes in single quotes.
func shellWords(args []string) string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = a
		if strings.ContainsAny(a, " '\"") {
			out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
	}
	return strings.Join(out, " ")
}
