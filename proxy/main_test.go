package proxy

import (
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// dialHelperEnv makes the test binary a client process (for tests that
// need a caller with a process of its own in another network namespace,
// started with `ip netns exec`): it connects to the address the variable
// holds, prints its local address on a line, then whatever the server
// sends until it closes, and exits.
const dialHelperEnv = "PROXY_TEST_DIAL"

func TestMain(m *testing.M) {
	if addr := os.Getenv(dialHelperEnv); addr != "" {
		if err := dialHelper(addr); err != nil {
			fmt.Fprintln(os.Stderr, "dial helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func dialHelper(addr string) error {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Println(c.LocalAddr())
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err = io.Copy(os.Stdout, c)
	return err
}
