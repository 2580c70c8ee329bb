package fakeimds

// Identity values served by the fake, the same as amazon-ec2-metadata-mock's
// defaults so tests can use either upstream. AccessKeyID, SecretAccessKey
// and Token are the node role's credentials: what a daemon signs its STS
// calls with (package fakests expects them).
const (
	InstanceID       = "i-1234567890abcdef0"
	AvailabilityZone = "us-east-1a"
	Region           = "us-east-1"
	RoleName         = "baskinc-role"
	AccessKeyID      = "12345678901"
	SecretAccessKey  = "v/12345678901"
	Token            = "TEST92test48TEST+y6RpoTEST92test48TEST/8oWVAiBqTEsT5Ky7ty2tEStxC1T=="
)

// roleJSON is the credentials document of RoleName.
const roleJSON = `{
	"Code": "Success",
	"LastUpdated": "2020-04-02T18:50:40Z",
	"Type": "AWS-HMAC",
	"AccessKeyId": "` + AccessKeyID + `",
	"SecretAccessKey": "` + SecretAccessKey + `",
	"Token": "` + Token + `",
	"Expiration": "2100-01-01T00:00:00Z"
}`

// tree maps each served path below /latest to its body. Directory listings end
// with "/"; a request for a directory without the slash gets a 301.
var tree = map[string]string{
	"/":                                      "dynamic\nmeta-data\nuser-data",
	"/meta-data/":                            "iam/\ninstance-id\nplacement/",
	"/meta-data/instance-id":                 InstanceID,
	"/meta-data/placement/":                  "availability-zone\nregion",
	"/meta-data/placement/availability-zone": AvailabilityZone,
	"/meta-data/placement/region":            Region,
	"/meta-data/iam/":                        "info\nsecurity-credentials/",
	"/meta-data/iam/info":                    `{"Code":"Success","InstanceProfileArn":"arn:aws:iam::123456789012:instance-profile/` + RoleName + `"}`,
	"/meta-data/iam/security-credentials/":   RoleName,
	"/meta-data/iam/security-credentials/" + RoleName: roleJSON,
	"/user-data": "#!/bin/sh\necho fakeimds\n",
}
