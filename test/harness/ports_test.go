package harness

import (
	"fmt"
	"net"
	"testing"
)

// TestFreePortIsBelowTheEphemeralRange: the port is one no outgoing connection takes, and a
// server can bind it.
func TestFreePortIsBelowTheEphemeralRange(t *testing.T) {
	low := ephemeralLow()
	for range 20 {
		p := FreePortFor(t)
		if p >= low {
			t.Fatalf("port %d is in the ephemeral range (from %d)", p, low)
		}
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
		if err != nil {
			t.Fatalf("port %d: %v", p, err)
		}
		_ = l.Close()
	}
}
