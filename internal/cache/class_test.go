package cache

import "testing"

func TestClassOf(t *testing.T) {
	for _, c := range []struct {
		path string
		want Class
	}{
		// static for the boot, under any version
		{"/latest/meta-data/instance-id", Static},
		{"/2009-04-04/meta-data/instance-id", Static},
		{"/1.0/meta-data/ami-id", Static},
		{"/latest/meta-data/instance-type", Static},
		{"/latest/meta-data/placement/availability-zone", Static},
		{"/latest/meta-data/placement/", Static},
		{"/latest/meta-data/placement", Static},
		{"/latest/meta-data/block-device-mapping/root", Static},
		{"/latest/meta-data/services/domain", Static},
		{"/latest/meta-data/mac", Static},
		{"/latest/user-data", Static},
		{"/latest/dynamic/instance-identity/document", Static},
		{"/latest/dynamic/instance-identity/pkcs7", Static},
		// can change while running; and everything unknown
		{"/latest/meta-data/public-ipv4", Dynamic},
		{"/latest/meta-data/hostname", Dynamic},
		{"/latest/meta-data/local-hostname", Dynamic},
		{"/latest/meta-data/network/interfaces/macs/0e:00:00:00:00:01/local-ipv4s", Dynamic},
		{"/latest/meta-data/security-groups", Dynamic},
		{"/latest/meta-data/iam/info", Dynamic},
		{"/latest/meta-data/iam/security-credentials/", Dynamic}, // the role list
		{"/latest/meta-data/iam/security-credentials", Dynamic},
		{"/latest/meta-data/identity-credentials/ec2/info", Dynamic},
		{"/latest/meta-data/tags/instance/Name", Dynamic},
		{"/latest/meta-data/", Dynamic}, // listings gain iam/, spot/, events/
		{"/latest/meta-data", Dynamic},
		{"/latest/", Dynamic},
		{"/latest", Dynamic},
		{"/", Dynamic},
		{"/latest/dynamic/", Dynamic},
		{"/latest/meta-data/instance-idx", Dynamic}, // a prefix is not a parent
		{"/latest/meta-data/Instance-Id", Dynamic},  // case-sensitive, as IMDS is
		{"/latest/meta-data/no-such-thing", Dynamic},
		// credentials
		{"/latest/meta-data/iam/security-credentials/my-role", Credentials},
		{"/2009-04-04/meta-data/iam/security-credentials/my-role", Credentials},
		{"/latest/meta-data/iam/security-credentials/my-role/", Credentials},
		{"/latest/meta-data/identity-credentials/ec2/security-credentials/ec2-instance", Credentials},
		{"/latest/meta-data/iam/security-credentials/my-role/x", Dynamic},
		// events
		{"/latest/meta-data/spot/instance-action", Event},
		{"/latest/meta-data/spot/termination-time", Event},
		{"/latest/meta-data/spot", Event},
		{"/latest/meta-data/events/maintenance/scheduled", Event},
		{"/latest/meta-data/events/recommendations/rebalance", Event},
		{"/latest/meta-data/autoscaling/target-lifecycle-state", Event},
		// never
		{"/latest/api/token", Never},
		{"/2021-03-23/api/token", Never},
	} {
		if got := ClassOf(c.path); got != c.want {
			t.Errorf("ClassOf(%q) = %s, want %s", c.path, got, c.want)
		}
	}
}
