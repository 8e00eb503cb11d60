// Command demo is `make demo`: it starts a real kube-apiserver and etcd with the Calico CRDs,
// runs bin/webhook registered through config/webhook/webhooks.yaml, and plays the seed
// route-reflector migration with kubectl and calicoctl, printing what a user would see.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/rrguard/rrguard/internal/scenario"
	"github.com/rrguard/rrguard/internal/scenario/live"
	"github.com/rrguard/rrguard/test/harness"
)

func main() { os.Exit(run()) }

func say(format string, args ...interface{}) { fmt.Printf(format+"\n", args...) }

func run() int {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	say("▶ starting etcd and kube-apiserver (bin/) with the Calico CRDs of both API groups …")
	// With the audit's report kind, as config/webhook installs it.
	h, err := harness.Start(harness.Options{CRDPaths: []string{"config/crd/openreports"}})
	if err != nil {
		say("demo: %v", err)
		return 1
	}
	defer func() {
		say("▶ stopping the control plane")
		_ = h.Stop()
	}()

	work, err := os.MkdirTemp("", "rrguard-demo-")
	if err != nil {
		say("demo: %v", err)
		return 1
	}
	defer os.RemoveAll(work)
	stop, addr, err := startWebhook(ctx, h, work)
	if err != nil {
		say("demo: start the webhook: %v", err)
		return 1
	}
	defer stop()

	path := filepath.Join(h.RootDir, "test", "scenarios", "seed-tutorial.yaml")
	sc, err := scenario.Load(path)
	if err != nil {
		say("demo: %v", err)
		return 1
	}
	// An outside acceptance set ($RRGUARD_SCENARIOS) is played after the story.
	extra, err := scenario.LoadDirs(scenario.Dirs(h.RootDir)[1:])
	if err != nil {
		say("demo: %v", err)
		return 1
	}
	say("▶ the story: %s", path)
	say("  five nodes (10.30.0.13-17) move from the node-to-node mesh to two route reflectors, zyisy and")
	say("  rxgks, sharing cluster ID 1.0.0.1; then the mesh is disabled with AS 63400. Every step is run")
	say("  the way an operator runs it; rrguard (https://%s) answers through the API server.", addr)
	say("")

	r, err := play(ctx, h, sc)
	if err != nil {
		say("demo: %v", err)
		return 1
	}
	// A reflector made with calicoctl carries route-reflector in its Calico label set (the
	// projectcalico.org/labels annotation), which -L does not show: print both columns.
	out := h.Kubectl(ctx, nil, "get", "nodes", "-o", "custom-columns="+reflectorColumns)
	say("$ kubectl get nodes -o custom-columns=%s\n%s", reflectorColumns, indent(out.Stdout))
	say("  (BGPPeer selectors match the Calico label set: the node's labels plus projectcalico.org/labels,")
	say("   where calicoctl writes the labels of a projectcalico.org/v3 Node)")
	out = h.Kubectl(ctx, nil, "get", "bgppeers.crd.projectcalico.org,bgpconfigurations.crd.projectcalico.org")
	say("$ kubectl get bgppeers,bgpconfigurations\n%s", indent(out.Stdout))
	// The audit runs two seconds after each change: give it a moment after the last one.
	time.Sleep(3 * time.Second)
	out = h.Kubectl(ctx, nil, "get", "clusterreport", "rrguard", "-o", "jsonpath={.summary}")
	say("$ kubectl get clusterreport rrguard -o jsonpath={.summary}    # the audit of the whole cluster\n  %s", strings.TrimSpace(out.Stdout+out.Stderr))
	if r.mismatches == 0 {
		say("  the mesh is off and every node still learns every other node's pod routes.")
	}
	for _, s := range extra {
		say("")
		say("▶ scenario %s (%s, from $%s)", s.Name, s.Path, scenario.EnvDirs)
		e, err := play(ctx, h, s)
		if err != nil {
			say("demo: %v", err)
			return 1
		}
		r.add(e)
	}
	say("▶ summary: %d steps, %d refused with the rule that explains them, %d allowed with warnings, %d not as expected",
		r.steps, r.refused, r.warned, r.mismatches)
	if r.mismatches > 0 {
		return 1
	}
	return 0
}

// reflectorColumns shows a node's route-reflector label and its Calico-only labels.
const reflectorColumns = `NAME:.metadata.name,ROUTE-REFLECTOR:.metadata.labels.route-reflector,CALICO-LABELS:.metadata.annotations.projectcalico\.org/labels`

// tally counts what happened to a scenario's steps.
type tally struct{ steps, refused, warned, mismatches int }

func (t *tally) add(o tally) {
	t.steps += o.steps
	t.refused += o.refused
	t.warned += o.warned
	t.mismatches += o.mismatches
}

// play empties the cluster, creates the scenario's initial objects and plays its steps,
// printing each as the user sees it.
func play(ctx context.Context, h *harness.Harness, sc *scenario.Scenario) (tally, error) {
	t := tally{steps: len(sc.Steps)}
	runner := &live.Runner{H: h}
	if err := runner.Begin(ctx, sc); err != nil {
		return t, err
	}
	out := h.Kubectl(ctx, nil, "get", "nodes", "-L", "route-reflector")
	say("$ kubectl get nodes -L route-reflector\n%s", indent(out.Stdout))

	for i, st := range sc.Steps {
		say("── step %d: %s", i+1, st.Name)
		obs, err := runner.Step(ctx, i+1, st)
		if err != nil {
			return t, err
		}
		if raw, err := yaml.Marshal(st.Object.Object); err == nil {
			say("%s", indent(strings.TrimSpace(string(raw))))
		}
		say("$ %s", obs.Command)
		for _, line := range strings.Split(strings.TrimSpace(obs.Output.Stdout+"\n"+obs.Output.Stderr), "\n") {
			if strings.TrimSpace(line) != "" {
				say("  %s", line)
			}
		}
		if !obs.Allowed {
			t.refused++
		}
		if len(obs.Warnings) > 0 {
			t.warned++
		}
		if st.After != nil {
			for node := range st.After.NodeLabels {
				labels := obs.NodeLabels[node]
				say("  (node %s now has route-reflector=%q)", node, labels["route-reflector"])
			}
		}
		if diffs := live.Check(obs); len(diffs) > 0 {
			t.mismatches++
			for _, d := range diffs {
				say("  ✘ %s", d)
			}
		} else {
			verdict := "allowed"
			if !obs.Allowed {
				verdict = "refused by " + strings.Join(obs.Rules, ", ")
			}
			say("  ✔ %s, as expected", verdict)
		}
		say("")
	}
	return t, nil
}

func indent(s string) string {
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		b.WriteString("  " + line + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// startWebhook runs bin/webhook with a fresh CA's certificate and registers it.
func startWebhook(ctx context.Context, h *harness.Harness, work string) (stop func(), addr string, err error) {
	ca, err := harness.NewCA("rrguard-demo-ca")
	if err != nil {
		return nil, "", err
	}
	certDir := filepath.Join(work, "certs")
	if err := os.MkdirAll(certDir, 0o700); err != nil {
		return nil, "", err
	}
	if _, err := ca.WriteServing(certDir); err != nil {
		return nil, "", err
	}
	port, err := harness.FreePort()
	if err != nil {
		return nil, "", err
	}
	probe, err := harness.FreePort()
	if err != nil {
		return nil, "", err
	}
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	logPath := filepath.Join(os.TempDir(), "rrguard-demo-webhook.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, "", err
	}
	cmd := exec.Command(filepath.Join(h.RootDir, "bin", "webhook"), "--host", "127.0.0.1", "--port", fmt.Sprint(port),
		"--cert-dir", certDir, "--metrics-bind-address", "0", "--health-probe-bind-address", fmt.Sprintf("127.0.0.1:%d", probe))
	cmd.Env = append(os.Environ(), "KUBECONFIG="+h.Kubeconfig)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	say("▶ starting rrguard: bin/webhook --port %d --cert-dir … (log: %s)", port, logPath)
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	stop = func() {
		say("▶ stopping rrguard")
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
		}
		logFile.Close()
	}
	readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", probe)
	if err := harness.Poll(time.Minute, func() error {
		if ctx.Err() != nil {
			return nil // interrupted: the next step stops
		}
		return harness.Ready(readyz)
	}); err != nil || ctx.Err() != nil {
		stop()
		return nil, "", fmt.Errorf("rrguard not ready within a minute (see %s): %v", logPath, err)
	}
	say("▶ rrguard is ready (its informer caches have synced); registering config/webhook/webhooks.yaml")
	register := func(ctx context.Context) error {
		if err := h.RegisterWebhooks(ctx, filepath.Join(h.RootDir, "config", "webhook", "webhooks.yaml"), "https://"+addr, ca.CertPEM); err != nil {
			return err
		}
		// The API server loads new webhook configurations asynchronously.
		time.Sleep(2 * time.Second)
		return nil
	}
	if err := register(ctx); err != nil {
		stop()
		return nil, "", err
	}
	// A story ends with reflectors rrguard will not let go of: the next scenario starts from an
	// empty cluster emptied with rrguard out of the way.
	h.ResetGuard = func(ctx context.Context, reset func() error) error {
		for _, kind := range []client.Object{&admissionregistrationv1.MutatingWebhookConfiguration{}, &admissionregistrationv1.ValidatingWebhookConfiguration{}} {
			if err := h.Client.DeleteAllOf(ctx, kind); err != nil {
				return fmt.Errorf("take rrguard's webhooks out of the way: %w", err)
			}
		}
		return errors.Join(reset(), register(ctx))
	}
	return stop, addr, nil
}
