//go:build e2e

package bird

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// tnode is a node of a test topology; its addresses follow from its index.
type tnode struct {
	name   string
	v4, v6 bool
	cid    string
	as     uint32
	labels map[string]string
}

// tpeer is a BGPPeer of a test topology.
type tpeer struct {
	name, node, nodeSel, peerSel, peerIP string
	as                                   uint32
	manual                               bool
}

type topology struct {
	nodes []tnode
	peers []tpeer
	mesh  bool
	as    uint32
}

func v4(i int) string { return fmt.Sprintf("10.77.0.%d", i+1) }
func v6(i int) string { return fmt.Sprintf("fd77::%x", i+1) }

// block is the pod block node i originates in family v6 or not.
func block(i int, ipv6 bool) netip.Prefix {
	if ipv6 {
		return netip.MustParsePrefix(fmt.Sprintf("fd10:0:0:%x::/64", i))
	}
	return netip.MustParsePrefix(fmt.Sprintf("192.168.%d.0/26", i))
}

func (t *topology) manifests() string {
	var b strings.Builder
	asNumber := t.as
	if asNumber == 0 {
		asNumber = 64512
	}
	fmt.Fprintf(&b, "apiVersion: projectcalico.org/v3\nkind: BGPConfiguration\nmetadata: {name: default}\nspec: {nodeToNodeMeshEnabled: %v, asNumber: %d}\n", t.mesh, asNumber)
	for i, n := range t.nodes {
		fmt.Fprintf(&b, "---\napiVersion: projectcalico.org/v3\nkind: Node\nmetadata:\n  name: %s\n  labels: {", n.name)
		keys := make([]string, 0, len(n.labels))
		for k := range n.labels {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for j, k := range keys {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s: %q", k, n.labels[k])
		}
		b.WriteString("}\nspec:\n  bgp:\n")
		if n.v4 {
			fmt.Fprintf(&b, "    ipv4Address: %s/16\n", v4(i))
		}
		if n.v6 {
			fmt.Fprintf(&b, "    ipv6Address: %s/64\n", v6(i))
		}
		if n.cid != "" {
			fmt.Fprintf(&b, "    routeReflectorClusterID: %s\n", n.cid)
		}
		if n.as != 0 {
			fmt.Fprintf(&b, "    asNumber: %d\n", n.as)
		}
	}
	for _, p := range t.peers {
		fmt.Fprintf(&b, "---\napiVersion: projectcalico.org/v3\nkind: BGPPeer\nmetadata: {name: %s}\nspec:\n", p.name)
		if p.node != "" {
			fmt.Fprintf(&b, "  node: %s\n", p.node)
		}
		if p.nodeSel != "" {
			fmt.Fprintf(&b, "  nodeSelector: %q\n", p.nodeSel)
		}
		if p.peerSel != "" {
			fmt.Fprintf(&b, "  peerSelector: %q\n", p.peerSel)
		}
		if p.peerIP != "" {
			fmt.Fprintf(&b, "  peerIP: %q\n", p.peerIP)
		}
		if p.as != 0 {
			fmt.Fprintf(&b, "  asNumber: %d\n", p.as)
		}
		if p.manual {
			b.WriteString("  reversePeering: Manual\n")
		}
	}
	return b.String()
}

// The part of `rrguard sessions -o json` the comparison reads.
type prediction struct {
	Nodes []struct {
		Name     string `json:"name"`
		Sessions []struct {
			Family      string `json:"family"`
			PeerIP      string `json:"peerIP"`
			Established bool   `json:"established"`
		} `json:"sessions"`
		Learns map[string][]string `json:"learns"`
	} `json:"nodes"`
	Undecided []any `json:"undecided"`
}

func rrguard(t *testing.T, args ...string) []byte {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(rrguardBin, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("rrguard %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return out
}

// splitBIRD splits `rrguard sessions -o bird` of every node into one text per node.
func splitBIRD(out []byte) map[string]string {
	const marker = "# BGP sessions calico-node configures on "
	parts := map[string]string{}
	for _, chunk := range strings.Split(string(out), marker)[1:] {
		name, _, _ := strings.Cut(chunk, " ")
		parts[name] = marker + chunk
	}
	return parts
}

// fastTimers shortens calico-node's timers so that a test converges in seconds.
var fastTimers = strings.NewReplacer(
	"connect delay time 2;", "connect delay time 1;",
	"connect retry time 5;", "connect retry time 1;",
	"error wait time 5,30;", "error wait time 1,2;",
)

// birdConfig is a node's bird.cfg: the node's pod block, an export filter like Calico's
// (pod blocks only), and the sessions rrguard rendered.
func birdConfig(i int, ipv6 bool, sessions string) string {
	pool := "192.168.0.0/16"
	if ipv6 {
		pool = "fd10::/16"
	}
	return fmt.Sprintf(`# test/bird: node %d
protocol device { scan time 1; }
protocol direct { interface "eth0"; }
protocol static { route %s blackhole; }
function calico_export_to_bgp_peers(bool internal_peer) {
  if ( net ~ %s ) then accept;
}
%s`, i, block(i, ipv6), pool, fastTimers.Replace(sessions))
}

var parallel = make(chan struct{}, 8)

// check plays one topology on real BIRDs and compares what they learn with rrguard; it
// returns what each speaker learned: "node family" → the nodes whose pod routes it holds.
func check(t *testing.T, topo topology) map[string][]string {
	t.Helper()
	parallel <- struct{}{}
	defer func() { <-parallel }()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "input.yaml"), []byte(topo.manifests()), 0o644); err != nil {
		t.Fatal(err)
	}
	var pred prediction
	if err := json.Unmarshal(rrguard(t, "sessions", "-f", dir, "-o", "json"), &pred); err != nil {
		t.Fatal(err)
	}
	if len(pred.Undecided) > 0 {
		t.Fatalf("rrguard left route propagation undecided: %v", pred.Undecided)
	}
	configs := map[bool]map[string]string{
		false: splitBIRD(rrguard(t, "sessions", "-f", dir, "-o", "bird")),
		true:  splitBIRD(rrguard(t, "sessions", "-f", dir, "-o", "bird6")),
	}
	index := map[string]int{}
	for i, n := range topo.nodes {
		index[n.name] = i
	}

	net := newNetwork(t, len(topo.nodes))
	for i, n := range topo.nodes {
		net.attach(t, i, n.v4, n.v6)
	}
	var speakers []*speaker
	for i, n := range topo.nodes {
		for _, ipv6 := range []bool{false, true} {
			if (ipv6 && !n.v6) || (!ipv6 && !n.v4) {
				continue
			}
			cfg := birdConfig(i, ipv6, configs[ipv6][n.name])
			speakers = append(speakers, net.start(t, dir, i, n.name, ipv6, cfg))
		}
	}

	// Wait until every session rrguard calls established is Established and every table has
	// been stable for a few polls.
	want := map[*speaker][]string{}
	for _, s := range speakers {
		for _, pn := range pred.Nodes {
			if pn.Name != s.node {
				continue
			}
			for _, ss := range pn.Sessions {
				if ss.Established && (ss.Family == "IPv6") == s.ipv6 {
					want[s] = append(want[s], protocolName(ss.PeerIP))
				}
			}
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	var last string
	stable := 0
	var learned map[*speaker][]string
	for {
		pending := []string{}
		for _, s := range speakers {
			states := s.protocols(t)
			for _, p := range want[s] {
				if states[p] != "Established" {
					pending = append(pending, fmt.Sprintf("%s %s: %s", s.node, p, states[p]))
				}
			}
		}
		learned = map[*speaker][]string{}
		var fp strings.Builder
		for _, s := range speakers {
			learned[s] = s.learned(t, index)
			fmt.Fprintln(&fp, s.node, s.ipv6, learned[s])
		}
		if len(pending) == 0 && fp.String() == last {
			stable++
		} else {
			stable = 0
		}
		last = fp.String()
		if stable >= 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("BIRD did not converge in 60 s; sessions rrguard calls established but BIRD does not: %v\ntopology:\n%s", pending, topo.manifests())
		}
		time.Sleep(300 * time.Millisecond)
	}

	// Sessions: BIRD's Established ones are exactly those rrguard calls established.
	for _, s := range speakers {
		states := s.protocols(t)
		var up []string
		for p, st := range states {
			if st == "Established" {
				up = append(up, p)
			}
		}
		sort.Strings(up)
		w := slices.Clone(want[s])
		sort.Strings(w)
		if fmt.Sprint(up) != fmt.Sprint(w) {
			t.Errorf("%s %s: BIRD has sessions %v Established, rrguard predicts %v", s.node, family(s.ipv6), up, w)
		}
	}
	// Routes, node pair by node pair.
	for _, s := range speakers {
		var predicted []string
		for _, pn := range pred.Nodes {
			if pn.Name == s.node {
				predicted = pn.Learns[family(s.ipv6)]
			}
		}
		got := learned[s]
		for _, from := range got {
			if !slices.Contains(predicted, from) {
				t.Errorf("%s: %s learns the pod routes of %s in BIRD; rrguard says it does not", family(s.ipv6), s.node, from)
			}
		}
		for _, from := range predicted {
			if !slices.Contains(got, from) {
				t.Errorf("%s: rrguard says %s learns the pod routes of %s; BIRD does not", family(s.ipv6), s.node, from)
			}
		}
	}
	if t.Failed() {
		t.Logf("topology:\n%s", topo.manifests())
	}
	out := map[string][]string{}
	for s, l := range learned {
		out[s.node+" "+family(s.ipv6)] = l
	}
	return out
}

func family(ipv6 bool) string {
	if ipv6 {
		return "IPv6"
	}
	return "IPv4"
}

func protocolName(ip string) string { return strings.NewReplacer(".", "_", ":", "_").Replace(ip) }

// network is a bridge in a namespace of its own and one namespace per node.
type network struct {
	prefix string
	sw     string
}

var netSeq struct {
	sync.Mutex
	n int
}

func run(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func newNetwork(t *testing.T, nodes int) *network {
	netSeq.Lock()
	netSeq.n++
	prefix := fmt.Sprintf("%s%d-", nsPrefix(), netSeq.n)
	netSeq.Unlock()
	n := &network{prefix: prefix, sw: prefix + "sw"}
	live.addNetns(n.sw)
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "delete", n.sw).Run()
		live.dropNetns(n.sw)
	})
	run(t, "ip", "netns", "add", n.sw)
	run(t, "ip", "-n", n.sw, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", n.sw, "link", "set", "br0", "up")
	return n
}

func (n *network) ns(i int) string { return fmt.Sprintf("%sn%d", n.prefix, i) }

// attach gives node i a namespace with eth0 on the bridge and its addresses.
func (n *network) attach(t *testing.T, i int, ipv4, ipv6 bool) {
	ns := n.ns(i)
	live.addNetns(ns)
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "delete", ns).Run()
		live.dropNetns(ns)
	})
	veth := fmt.Sprintf("v%d", i)
	run(t, "ip", "netns", "add", ns)
	run(t, "ip", "-n", n.sw, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
	run(t, "ip", "-n", n.sw, "link", "set", veth, "master", "br0", "up")
	run(t, "ip", "-n", ns, "link", "set", "lo", "up")
	if ipv4 {
		run(t, "ip", "-n", ns, "addr", "add", v4(i)+"/16", "dev", "eth0")
	}
	if ipv6 {
		run(t, "ip", "-n", ns, "addr", "add", v6(i)+"/64", "dev", "eth0", "nodad")
	}
	run(t, "ip", "-n", ns, "link", "set", "eth0", "up")
}

// speaker is one running BIRD (bird for IPv4, bird6 for IPv6) of one node.
type speaker struct {
	node string
	ipv6 bool
	ns   string
	sock string
}

func (n *network) start(t *testing.T, dir string, i int, name string, ipv6 bool, cfg string) *speaker {
	bin := "bird"
	if ipv6 {
		bin = "bird6"
	}
	base := filepath.Join(dir, fmt.Sprintf("%s-%s", name, bin))
	if err := os.WriteFile(base+".cfg", []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	s := &speaker{node: name, ipv6: ipv6, ns: n.ns(i), sock: base + ".ctl"}
	cmd := exec.Command("ip", "netns", "exec", s.ns, bin, "-f", "-c", base+".cfg", "-s", s.sock)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s for %s: %v", bin, name, err)
	}
	live.addProc(cmd.Process)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
		live.dropProc(cmd.Process)
	})
	// The control socket appears once the configuration has loaded.
	for range 100 {
		if _, err := os.Stat(s.sock); err == nil {
			return s
		}
		select {
		case <-done:
			t.Fatalf("%s for %s exited: %s\nconfiguration:\n%s", bin, name, out.String(), cfg)
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s for %s: no control socket after 5 s: %s", bin, name, out.String())
	return nil
}

func (s *speaker) birdc(t *testing.T, args ...string) string {
	bin := "birdc"
	if s.ipv6 {
		bin = "birdc6"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append([]string{"-s", s.sock}, args...)...).Output()
	if err != nil {
		t.Fatalf("%s %s for %s: %v", bin, strings.Join(args, " "), s.node, err)
	}
	return string(out)
}

// protocols maps each BGP protocol (by neighbor, as rrguard names them) to its state.
func (s *speaker) protocols(t *testing.T) map[string]string {
	states := map[string]string{}
	for _, line := range strings.Split(s.birdc(t, "show", "protocols"), "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[1] != "BGP" {
			continue
		}
		_, peer, _ := strings.Cut(f[0], "_")
		state := f[3]
		if len(f) >= 6 {
			state = f[5] // info: Established, Active, Connect, …
		}
		if state != "Established" && len(f) > 6 {
			state += " (" + strings.Join(f[6:], " ") + ")"
		}
		states[peer] = state
	}
	return states
}

// learned lists the nodes whose pod block this BIRD has a route for. Only the primary route
// of each block is listed: with add paths a BIRD may hold very many paths per block.
func (s *speaker) learned(t *testing.T, index map[string]int) []string {
	var out []string
	for _, line := range strings.Split(s.birdc(t, "show", "route", "primary"), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		p, err := netip.ParsePrefix(f[0])
		if err != nil {
			continue
		}
		for name, i := range index {
			if name != s.node && block(i, s.ipv6) == p && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	sort.Strings(out)
	return out
}
