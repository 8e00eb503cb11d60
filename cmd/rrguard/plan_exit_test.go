package main

import (
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"syscall"
	"testing"

	"github.com/rrguard/rrguard/pkg/plan"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// TestStepExit: a step the API server judged and refused is exit 1, one it could not judge (it,
// or a webhook that fails closed, could not be reached) exit 2, as docs/plan.md says.
func TestStepExit(t *testing.T) {
	peers := schema.GroupResource{Group: "crd.projectcalico.org", Resource: "bgppeers"}
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: &os.SyscallError{Syscall: "connect", Err: syscall.ECONNREFUSED}}
	for _, tc := range []struct {
		name string
		err  error
		code int
	}{
		{"an admission denial", apierrors.NewInvalid(schema.GroupKind{Group: peers.Group, Kind: "BGPPeer"}, "p", nil), exitFindings},
		{"a webhook's denial", apierrors.NewBadRequest("admission webhook denied the request"), exitFindings},
		{"a conflict", apierrors.NewConflict(peers, "p", errors.New("field manager")), exitFindings},
		{"RBAC", apierrors.NewForbidden(peers, "p", errors.New("no")), exitFindings},
		{"the API server refuses the connection", &plan.StepError{Step: &plan.Step{Number: 2}, Err: &url.Error{Op: "Patch", URL: "https://127.0.0.1:6443", Err: refused}}, exitUsage},
		{"a webhook that fails closed is down", &plan.StepError{Step: &plan.Step{Number: 1}, Err: apierrors.NewInternalError(errors.New(`failed calling webhook "bgppeers.rrguard.io": connect: connection refused`))}, exitUsage},
		{"too many requests", apierrors.NewTooManyRequests("later", 1), exitUsage},
		{"a timeout", apierrors.NewTimeoutError("slow", 1), exitUsage},
		{"the context ended", context.DeadlineExceeded, exitUsage},
	} {
		if got := stepExit(tc.err); got != tc.code {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.code)
		}
	}
}
