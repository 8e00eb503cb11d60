package harness

import (
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"testing"
)

// FreePort returns a TCP port on 127.0.0.1 that is free now, for a server a test starts. It
// is taken below the kernel's ephemeral range (net.ipv4.ip_local_port_range), where the
// outgoing connections of every other test process take their local ports: a port the
// kernel handed out for :0 and gave back could go to such a connection before the server
// binds it ("bind: address already in use", seen in CI with the live packages in parallel).
func FreePort() (int, error) {
	low := ephemeralLow()
	const floor = 10000
	for range 200 {
		if low <= floor+1 {
			break
		}
		p := floor + rand.IntN(low-floor)
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			continue
		}
		_ = l.Close()
		return p, nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// ephemeralLow is the first port of the kernel's ephemeral range (32768, Linux's default,
// where it cannot be read).
func ephemeralLow() int {
	low, high := 32768, 0
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if _, err := fmt.Sscan(string(b), &low, &high); err != nil {
			low = 32768
		}
	}
	return low
}

// FreePortFor is FreePort for a test, which it fails when no port is free.
func FreePortFor(t testing.TB) int {
	t.Helper()
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}
