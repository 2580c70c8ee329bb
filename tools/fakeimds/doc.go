// Package fakeimds is a small, fast IMDSv2 upstream for load and wire tests:
// tokens are required, a handful of metadata paths are served the way IMDS
// serves them (Server: EC2ws, XHTML error bodies, 301 for directories without
// a trailing slash), token PUTs and GETs are counted, and every request can be
// recorded as a JSON line to prove what reached the upstream.
//
// Options play the instance's metadata options (options.go): the endpoint
// disabled (403 to everything) or silent, tags in metadata, token answers
// sent with an IP TTL of the hop limit.
//
// It exists because amazon-ec2-metadata-mock crashes under concurrent token
// PUTs. Unlike IMDS it does not refuse X-Forwarded-For: it records it, so a
// test can show that a proxy never sent it.
package fakeimds
