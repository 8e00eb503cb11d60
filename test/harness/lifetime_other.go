//go:build !linux

package harness

// Elsewhere than on Linux there is no parent-death signal: the control plane is stopped on
// SIGINT, SIGTERM and SIGHUP (stopOnSignal), and what a killed run leaves is swept at the next
// start.

func supervised(_, binary string) (string, error) { return binary, nil }

func endWithParent() error { return nil }
