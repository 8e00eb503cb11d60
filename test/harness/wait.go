package harness

import (
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// Poll calls f every 100ms until it returns nil, or returns f's last error once timeout has
// passed: for what the control plane or a webhook does asynchronously.
func Poll(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("after %v: %w", timeout, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Eventually is Poll for a test: it fails t, saying what did not happen, once timeout has passed.
func Eventually(t testing.TB, what string, timeout time.Duration, check func() error) {
	t.Helper()
	if err := Poll(timeout, check); err != nil {
		t.Fatalf("%s: did not happen %v", what, err)
	}
}

// Ready is nil when url (a readiness probe such as http://127.0.0.1:PORT/readyz) answers 200.
func Ready(url string) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s: HTTP %d: %s", url, resp.StatusCode, b)
	}
	return nil
}
