// Package fakests is a fake AWS STS for the tests of roles per workload: an
// http.Handler that speaks the awsquery protocol of AssumeRole as
// aws-sdk-go-v2's service/sts does (a form POST, XML answers), checks every
// request's SigV4 signature against the node credentials it is told to
// expect (by default NodeKey: what amazon-ec2-metadata-mock and fakeimds
// serve as the instance role's credentials), records every call, and mints
// distinct, recognisable credentials for each: AccessKeyId "ASIA" and a hash
// of the role, the session name and the call's number (Mint).
//
// Faults are set while it runs, for every role or for one: throttling (400
// Throttling), a denial (403 AccessDenied), a server error (500
// InternalFailure, 503 ServiceUnavailable), a delay before the answer, for
// a number of calls or until changed. Go methods set them in the process
// that serves it; the control API under /_fakests/ (Client) sets them in a
// fake run as bin/fakests, in a network namespace of a test.
//
// Nothing of it is AWS's: no IAM policies, no trust policies, no role
// existence. A call fails only when its signature does, its parameters
// break STS's documented constraints, or a fault says so.
package fakests
