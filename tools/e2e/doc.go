// Package e2e holds the end-to-end tests of imdsguard: the real daemon
// (bin/imdsguard) between real IMDS clients (AWS SDK for Go v1 and v2, boto,
// botocore, the AWS CLI) and amazon-ec2-metadata-mock or the in-repo fake
// upstream, all driven through package testbed. Run from tools/:
//
//	go test ./e2e/
//
// Tests skip, saying what to build or install, when binaries or clients are
// missing, and privileged ones skip when not root.
package e2e
