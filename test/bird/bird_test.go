//go:build e2e

package bird

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
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

	"github.com/rrguard/rrguard/test/harness"
)

// The part of `rrguard sessions -o json` the comparison reads.
type prediction struct {
	Nodes []struct {
		Name     string `json:"name"`
		Sessions []struct {
			Family      string `json:"family"`
			PeerIP      string `json:"peerIP"`
			Established bool   `json:"established"`
		} `json:"sessions"`
		// Learns: per family, the nodes B whose pod routes this node learns: every block B
		// originates, and B originates at least one.
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

// parallel bounds the topologies whose BIRDs run at once; big lets one topology of
// bigTopology nodes or more run its BIRDs at a time (30 speakers with the mesh on are 435
// sessions; two such at once on a loaded 2-core machine lose ARP answers on the bridge,
// "Socket: No route to host", and do not converge within deadline).
var (
	parallel = make(chan struct{}, 10)
	big      = make(chan struct{}, 1)
)

const bigTopology = 20

// Convergence: a topology is compared once every BIRD's table has been the same for
// stablePolls polls pollEvery apart, and either every BGP protocol of every BIRD is
// Established (nothing can change any more) or settle has passed since the last BIRD started
// and every session rrguard calls established is (a session that never comes up has had
// confd's connect delay and two connect retries by then); at the latest after deadline.
const (
	pollEvery   = 500 * time.Millisecond
	stablePolls = 4
	settle      = 10 * time.Second
	deadline    = 60 * time.Second
	// restartAfter: a session BIRD closed on an error (a hold timer that expired, a connection
	// collision: on a loaded machine, at start-up) is retried only after BIRD's error wait time,
	// 60 s at first; and one end may still hold the session Established (half open) while the
	// other's new connections lose the collision to it until the hold timer expires. Sessions
	// rrguard calls established that are still down this long after the start (or after the
	// last restart) are restarted at both ends (birdc restart), at most restarts times, and the
	// deadline counts from the last restart: a session whose configuration does not match stays
	// down after it.
	restartAfter = 20 * time.Second
	restarts     = 2
)

// check plays one topology: confd renders every node's configuration from the API server,
// real BIRDs run it, and what they learn is compared with rrguard on the same objects. It
// returns what each speaker learned: "node family" → the nodes whose pod routes it holds.
func check(t *testing.T, topo topology) map[string][]string {
	t.Helper()
	dir := t.TempDir()
	objs := topo.objects(t)
	manifests := topo.manifests(t, objs)
	if err := os.MkdirAll(filepath.Join(dir, "manifests"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "manifests", "input.yaml"), []byte(manifests), 0o644); err != nil {
		t.Fatal(err)
	}
	var pred prediction
	if err := json.Unmarshal(rrguard(t, "sessions", "-f", filepath.Join(dir, "manifests"), "-o", "json"), &pred); err != nil {
		t.Fatal(err)
	}
	if len(pred.Undecided) > 0 {
		t.Fatalf("rrguard left route propagation undecided: %v\ntopology:\n%s", pred.Undecided, manifests)
	}
	cfgs := render(t, topo, objs, dir)

	if len(topo.nodes) >= bigTopology {
		big <- struct{}{}
		defer func() { <-big }()
	}
	parallel <- struct{}{}
	defer func() { <-parallel }()

	nw := newNetwork(t, len(topo.nodes))
	for i, n := range topo.nodes {
		var a4, a6 string
		if n.v4 {
			a4 = v4(i)
		}
		if n.v6 {
			a6 = v6(i)
		}
		nw.attach(t, i, a4, a6)
	}
	var speakers []*speaker
	for i, n := range topo.nodes {
		for _, ipv6 := range []bool{false, true} {
			if (ipv6 && !n.v6) || (!ipv6 && !n.v4) {
				continue
			}
			speakers = append(speakers, nw.start(t, i, n.name, ipv6, cfgs[n.name]))
		}
	}
	startRouters(t, nw, topo, dir)
	started := time.Now()

	// blocks: node → family → the blocks confd made its BIRD originate.
	blocks := map[string]map[string][]string{}
	for _, n := range topo.nodes {
		blocks[n.name] = map[string][]string{"IPv4": cfgs[n.name].originated(false), "IPv6": cfgs[n.name].originated(true)}
	}
	predicted := map[string]map[string][]string{} // node → family → peer protocol ids rrguard calls established
	learnsPredicted := map[string]map[string][]string{}
	for _, pn := range pred.Nodes {
		predicted[pn.Name] = map[string][]string{}
		for _, ss := range pn.Sessions {
			if ss.Established && !slices.Contains(predicted[pn.Name][ss.Family], protocolName(ss.PeerIP)) {
				predicted[pn.Name][ss.Family] = append(predicted[pn.Name][ss.Family], protocolName(ss.PeerIP))
			}
		}
		learnsPredicted[pn.Name] = pn.Learns
	}

	var last string
	stable := 0
	var learned map[*speaker][]string
	var states map[*speaker]map[string]string
	var pending []string
	allUp := true
	polls, lastChange := 0, time.Duration(0)
	restarted := 0
	for {
		polls++
		pending = nil
		allUp = true
		states = map[*speaker]map[string]string{}
		for _, s := range speakers {
			states[s] = s.protocols(t)
			for _, st := range states[s] {
				allUp = allUp && st == "Established"
			}
		}
		// down: the BIRD protocols at both ends of each pending session, to restart.
		down := map[*speaker]map[string]bool{}
		restart := func(s *speaker, peer string) {
			if down[s] == nil {
				down[s] = map[string]bool{}
			}
			for _, name := range s.names[peer] {
				down[s][name] = true
			}
		}
		for _, s := range speakers {
			for _, p := range predicted[s.node][family(s.ipv6)] {
				if states[s][p] == "Established" {
					continue
				}
				pending = append(pending, fmt.Sprintf("%s %s: %s", s.node, p, states[s][p]))
				restart(s, p)
				for _, q := range speakers {
					if q.addr == p && q.ipv6 == s.ipv6 {
						restart(q, s.addr)
					}
				}
			}
		}
		// Stable: the same routes learned and the same sessions Established (a session that
		// fails goes on changing state as it retries).
		learned = map[*speaker][]string{}
		var fp strings.Builder
		for _, s := range speakers {
			learned[s] = s.learned(t, blocks)
			fmt.Fprintln(&fp, s.node, s.ipv6, learned[s], established(states[s]))
		}
		if fp.String() == last {
			stable++
		} else {
			stable, lastChange = 0, time.Since(started)
		}
		last = fp.String()
		if stable >= stablePolls && (allUp || (len(pending) == 0 && time.Since(started) >= settle)) {
			break
		}
		if restarted < restarts && len(down) > 0 && time.Since(started) >= restartAfter {
			t.Logf("restarting (at both ends) the sessions rrguard calls established that are still down after %s: %v", restartAfter, pending)
			for s, names := range down {
				for _, name := range slices.Sorted(maps.Keys(names)) {
					s.birdc(t, "restart "+name)
				}
			}
			restarted, started, stable = restarted+1, time.Now(), 0
		}
		if time.Since(started) >= deadline {
			if stable < stablePolls {
				t.Errorf("BIRD tables still changing after %s", deadline)
			}
			break
		}
		time.Sleep(pollEvery)
	}

	t.Logf("BIRD settled %s after the last speaker started (every session up: %v; %d polls, the last change at %s)",
		time.Since(started).Round(100*time.Millisecond), allUp, polls, lastChange.Round(100*time.Millisecond))
	involved := map[string]bool{}
	if len(pending) > 0 {
		t.Errorf("sessions rrguard calls established that BIRD has not Established after %s: %v", deadline, pending)
	}
	// Sessions: BIRD's Established ones are exactly those rrguard calls established.
	running := map[string]bool{}
	for _, s := range speakers {
		running[s.node+" "+family(s.ipv6)] = true
		up := established(states[s])
		w := slices.Clone(predicted[s.node][family(s.ipv6)])
		sort.Strings(w)
		if fmt.Sprint(up) != fmt.Sprint(w) {
			t.Errorf("%s %s: BIRD has sessions %v Established, rrguard predicts %v", s.node, family(s.ipv6), up, w)
			involved[s.node] = true
		}
	}
	for _, n := range topo.nodes {
		for _, fam := range []string{"IPv4", "IPv6"} {
			if !running[n.name+" "+fam] && (len(predicted[n.name][fam]) > 0 || len(learnsPredicted[n.name][fam]) > 0) {
				t.Errorf("%s: %s has no %s address, so no BIRD speaks %s for it; rrguard predicts sessions %v and learning from %v",
					fam, n.name, fam, fam, predicted[n.name][fam], learnsPredicted[n.name][fam])
				involved[n.name] = true
			}
		}
	}
	// Routes, node pair by node pair.
	for _, s := range speakers {
		fam := family(s.ipv6)
		want := learnsPredicted[s.node][fam]
		got := learned[s]
		for _, from := range got {
			if !slices.Contains(want, from) {
				t.Errorf("%s: %s learns the pod routes of %s (%s) in BIRD; rrguard says it does not", fam, s.node, from, strings.Join(blocks[from][fam], ", "))
				involved[s.node], involved[from] = true, true
			}
		}
		for _, from := range want {
			if !slices.Contains(got, from) {
				t.Errorf("%s: rrguard says %s learns the pod routes of %s; BIRD does not (%s originates %v; %s holds %v)",
					fam, s.node, from, from, blocks[from][fam], s.node, s.routes(t))
				involved[s.node], involved[from] = true, true
			}
		}
	}
	if t.Failed() {
		t.Logf("topology (as rrguard read it):\n%s", manifests)
		var names []string
		for name := range involved {
			names = append(names, name)
		}
		sort.Strings(names)
		if len(names) > 4 {
			t.Logf("configurations of %d nodes involved; the first 4 follow", len(names))
			names = names[:4]
		}
		for _, n := range topo.nodes {
			if !slices.Contains(names, n.name) {
				continue
			}
			var files []string
			if n.v4 {
				files = append(files, "bird.cfg", "bird_aggr.cfg", "bird_ipam.cfg")
			}
			if n.v6 {
				files = append(files, "bird6.cfg", "bird6_aggr.cfg", "bird6_ipam.cfg")
			}
			for _, f := range files {
				t.Logf("confd's %s of %s (comments and blank lines left out):\n%s", f, n.name, compact(cfgs[n.name].files[f]))
			}
		}
	}
	out := map[string][]string{}
	for s, l := range learned {
		out[s.node+" "+family(s.ipv6)] = l
	}
	return out
}

// established lists the protocols of states that are Established, sorted.
func established(states map[string]string) []string {
	var up []string
	for p, st := range states {
		if st == "Established" {
			up = append(up, p)
		}
	}
	sort.Strings(up)
	return up
}

// startRouters starts an outside router for each peerIP of the topology that is no node's
// address (IPv4): a BIRD that accepts a session from every node, in the AS its peerIP peers
// name, and passes on every route it learns over BGP, reflecting for the nodes of its own AS
// (each an rr client). That is the router rrguard assumes when it cannot see one: both ends
// configured make an established session, and the router's own policy passes everything.
func startRouters(t *testing.T, nw *network, topo topology, dir string) {
	t.Helper()
	nodeIPs := map[string]bool{}
	for i := range topo.nodes {
		nodeIPs[v4(i)], nodeIPs[v6(i)] = true, true
	}
	routers := map[string]uint32{}
	var order []string
	for _, p := range topo.peers {
		ip := p.peerIP
		if ip == "" || nodeIPs[ip] || strings.Contains(ip, ":") {
			continue
		}
		if _, ok := routers[ip]; !ok {
			order = append(order, ip)
		}
		if _, ok := routers[ip]; !ok || p.as != 0 {
			routers[ip] = p.as
		}
	}
	for k, ip := range order {
		as := routers[ip]
		if as == 0 {
			as = topo.asNumber()
		}
		var b strings.Builder
		fmt.Fprintf(&b, "# test/bird: an outside router\nrouter id %s;\nprotocol device { scan time 2; }\nprotocol direct { interface \"eth0\"; }\n", ip)
		for i, n := range topo.nodes {
			if !n.v4 {
				continue
			}
			nodeAS := n.as
			if nodeAS == 0 {
				nodeAS = topo.asNumber()
			}
			rr := ""
			if nodeAS == as {
				rr = fmt.Sprintf(" rr client; rr cluster id %s;", ip)
			}
			fmt.Fprintf(&b, "protocol bgp node%d { local as %d; neighbor %s as %d; passive on; import all; export where source = RTS_BGP;%s }\n", i, as, v4(i), nodeAS, rr)
		}
		path := filepath.Join(dir, fmt.Sprintf("router-%d.cfg", k))
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
		i := len(topo.nodes) + k
		nw.attach(t, i, ip, "")
		nw.startFile(t, i, "router "+ip, false, path, b.String()).addr = protocolName(ip)
	}
}

func family(ipv6 bool) string {
	if ipv6 {
		return "IPv6"
	}
	return "IPv4"
}

// protocolName is how confd names a peer's protocol after its prefix (Mesh_, Node_, Global_):
// the address with dots or colons as underscores.
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

func sh(t *testing.T, args ...string) {
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
	if err := live.addNetns(n.sw); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.delNetns(n.sw) })
	sh(t, "ip", "-n", n.sw, "link", "add", "br0", "type", "bridge")
	sh(t, "ip", "-n", n.sw, "link", "set", "br0", "up")
	return n
}

func (n *network) ns(i int) string { return fmt.Sprintf("%sn%d", n.prefix, i) }

// attach gives namespace i eth0 on the bridge with addresses ipv4 and ipv6 ("": none).
func (n *network) attach(t *testing.T, i int, ipv4, ipv6 string) {
	ns := n.ns(i)
	if err := live.addNetns(ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { live.delNetns(ns) })
	veth := fmt.Sprintf("v%d", i)
	sh(t, "ip", "-n", n.sw, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
	sh(t, "ip", "-n", n.sw, "link", "set", veth, "master", "br0", "up")
	sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	if ipv4 != "" {
		sh(t, "ip", "-n", ns, "addr", "add", ipv4+"/16", "dev", "eth0")
	}
	if ipv6 != "" {
		sh(t, "ip", "-n", ns, "addr", "add", ipv6+"/64", "dev", "eth0", "nodad")
	}
	sh(t, "ip", "-n", ns, "link", "set", "eth0", "up")
}

// speaker is one running BIRD (bird for IPv4, bird6 for IPv6) of one node.
type speaker struct {
	node string
	ipv6 bool
	ns   string
	sock string
	// conn is the open control socket, reply its reader (see birdc).
	conn  net.Conn
	reply *bufio.Reader
	// names are the BGP protocols to each neighbor (by the id protocols keys them by), as the
	// last protocols call listed them.
	names map[string][]string
	// addr is the speaker's own address as its peers' protocols are keyed by it.
	addr string
	// exited says how this BIRD ended and what it printed, or "" while it runs.
	exited func() string
}

// start runs BIRD on confd's bird.cfg (bird6 on bird6.cfg) of the node, in its namespace.
func (n *network) start(t *testing.T, i int, name string, ipv6 bool, cfg *rendered) *speaker {
	file := "bird.cfg"
	if ipv6 {
		file = "bird6.cfg"
	}
	return n.startFile(t, i, name, ipv6, filepath.Join(cfg.dir, file), cfg.files[file])
}

// startFile runs BIRD (bird6) on the configuration at path, text, in namespace i.
func (n *network) startFile(t *testing.T, i int, name string, ipv6 bool, path, text string) *speaker {
	bin, file := "bird", filepath.Base(path)
	if ipv6 {
		bin = "bird6"
	}
	// A unix socket's path has at most 107 bytes.
	if len(path) > 100 {
		t.Fatalf("%s: path too long for BIRD's control socket beside it", path)
	}
	s := &speaker{node: name, ipv6: ipv6, ns: n.ns(i), sock: strings.TrimSuffix(path, ".cfg") + ".ctl", addr: protocolName(v4(i))}
	if ipv6 {
		s.addr = protocolName(v6(i))
	}
	cmd := exec.Command("ip", "netns", "exec", s.ns, bin, "-f", "-c", path, "-s", s.sock)
	out := &harness.LogBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := live.startProc(cmd); err != nil {
		t.Fatalf("start %s for %s: %v", bin, name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		if s.conn != nil {
			_ = s.conn.Close()
		}
		_ = cmd.Process.Kill()
		<-done
		live.dropProc(cmd.Process)
	})
	// exited says how BIRD ended and what it printed, or "" while it runs.
	s.exited = func() string {
		select {
		case <-done:
			return fmt.Sprintf("%s exited (%v) and printed: %s", bin, cmd.ProcessState, out.String())
		default:
			return ""
		}
	}
	// BIRD makes its control socket before it reads the configuration (sysdep/unix/main.c:
	// cli_init_unix, then read_config), and greets a client only from its main loop, once the
	// configuration is committed: the speaker is up when a connection gets the greeting. The
	// socket's file alone is not enough: BIRD binds it before it listens, and a BIRD that
	// refused its configuration leaves it behind.
	var err error
	for start := time.Now(); time.Since(start) < 10*time.Second; {
		if err = s.connect(); err == nil {
			return s
		}
		select {
		case <-done:
			t.Fatalf("%s for %s refused %s: %s\n%s (comments and blank lines left out):\n%s", bin, name, path, out.String(), file, compact(text))
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s for %s: no greeting on its control socket after 10 s (%v): %s", bin, name, err, out.String())
	return nil
}

// connect opens the control socket and reads BIRD's greeting (0001 BIRD 1.6.8 ready.).
func (s *speaker) connect() error {
	c, err := net.DialTimeout("unix", s.sock, 5*time.Second)
	if err != nil {
		return err
	}
	if err := c.SetDeadline(time.Now().Add(5 * time.Second)); err != nil {
		_ = c.Close()
		return err
	}
	s.conn, s.reply = c, bufio.NewReader(c)
	if _, err := s.read(); err != nil {
		_ = c.Close()
		s.conn, s.reply = nil, nil
		return err
	}
	return nil
}

// birdc sends one command over the speaker's control socket (what birdc does, without a
// process per command: a test polls every speaker twice a second) and returns the reply's
// text lines, as birdc prints them. The connection is the one start opened; when it fails,
// the test says whether BIRD is still running and, if not, how it ended and what it printed.
func (s *speaker) birdc(t *testing.T, cmd string) []string {
	t.Helper()
	fail := func(err error) {
		t.Helper()
		why := s.exited()
		if why == "" {
			why = "BIRD is still running"
		}
		t.Fatalf("%s to BIRD of %s %s: %v; %s", cmd, s.node, family(s.ipv6), err, why)
	}
	if err := s.conn.SetDeadline(time.Now().Add(20 * time.Second)); err != nil {
		fail(err)
	}
	if _, err := s.conn.Write([]byte(cmd + "\n")); err != nil {
		fail(err)
	}
	lines, err := s.read()
	if err != nil {
		fail(err)
	}
	return lines
}

// read reads one reply of BIRD's control protocol: lines "DDDD-text" and " text" up to the
// last, "DDDD text"; a code of 8000 or more is an error.
func (s *speaker) read() ([]string, error) {
	var lines []string
	for {
		line, err := s.reply.ReadString('\n')
		if err != nil {
			return nil, err
		}
		line = strings.TrimSuffix(line, "\n")
		if strings.HasPrefix(line, " ") {
			lines = append(lines, line[1:])
			continue
		}
		if len(line) < 5 {
			return nil, fmt.Errorf("reply line %q", line)
		}
		code, sep, text := line[:4], line[4], line[5:]
		if code >= "8000" {
			return nil, fmt.Errorf("BIRD: %s %s", code, text)
		}
		if code != "0000" {
			lines = append(lines, text)
		}
		if sep == ' ' {
			return lines, nil
		}
	}
}

// protocols maps each BGP protocol (by neighbor, as confd names them after their prefix) to
// its state; of two protocols to one neighbor, an Established one counts.
func (s *speaker) protocols(t *testing.T) map[string]string {
	states := map[string]string{}
	s.names = map[string][]string{}
	for _, line := range s.birdc(t, "show protocols") {
		f := strings.Fields(line)
		if len(f) < 4 || f[1] != "BGP" {
			continue
		}
		_, peer, _ := strings.Cut(f[0], "_")
		s.names[peer] = append(s.names[peer], f[0])
		state := f[3]
		if len(f) >= 6 {
			state = f[5] // info: Established, Active, Connect, …
		}
		if state != "Established" && len(f) > 6 {
			state += " (" + strings.Join(f[6:], " ") + ")"
		}
		if states[peer] != "Established" {
			states[peer] = state
		}
	}
	return states
}

// routes are the prefixes of this BIRD's primary routes. Only the primary route of each
// prefix is listed: with add paths a BIRD may hold very many paths per block.
func (s *speaker) routes(t *testing.T) []string {
	var out []string
	for _, line := range s.birdc(t, "show route primary") {
		f := strings.Fields(line)
		if len(f) == 0 || line[0] == ' ' || line[0] == '\t' {
			continue
		}
		if p, err := netip.ParsePrefix(f[0]); err == nil {
			out = append(out, p.String())
		}
	}
	sort.Strings(out)
	return out
}

// learned lists the other nodes all of whose blocks of this family this BIRD holds a route
// for (a node that originates none is learned from by no one).
func (s *speaker) learned(t *testing.T, blocks map[string]map[string][]string) []string {
	have := map[string]bool{}
	for _, p := range s.routes(t) {
		have[p] = true
	}
	var out []string
	for name, fams := range blocks {
		bs := fams[family(s.ipv6)]
		if name == s.node || len(bs) == 0 {
			continue
		}
		all := true
		for _, b := range bs {
			all = all && have[netip.MustParsePrefix(b).String()]
		}
		if all {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
