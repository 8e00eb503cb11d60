package conformance

import (
	"fmt"
	"net/netip"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

// goldenSession is one `protocol bgp NAME from bgp_template { ... }` of a golden bird.cfg or
// bird6.cfg: the session confd configured for the rendered node.
type goldenSession struct {
	Name   string
	Family string
	PeerIP netip.Addr
	// Port is the neighbor's port, 0 when the block names none (BGP's 179).
	Port   int
	PeerAS uint32
	// LocalAS is the block's own `local as`, else the template's.
	LocalAS   uint32
	RRClient  bool
	ClusterID string
}

// goldenConfig is what a golden BIRD configuration says about the sessions of its node.
type goldenConfig struct {
	// NodeAS is the `local as` of `template bgp bgp_template`: the node's AS number.
	NodeAS   uint32
	Sessions []goldenSession
}

// birdBlock is a `{ ... }` of a BIRD configuration: its header (the words before the brace),
// its own statements and its nested blocks.
type birdBlock struct {
	head     string
	stmts    []string
	children []*birdBlock
}

// parseBIRDBlocks reads the block structure of a BIRD configuration: comments (# to the end
// of the line) dropped, quoted strings kept whole, statements split at ';'.
func parseBIRDBlocks(text string) (*birdBlock, error) {
	root := &birdBlock{}
	stack := []*birdBlock{root}
	var cur strings.Builder
	line, inQuote := 1, false
	flush := func() string {
		s := strings.Join(strings.Fields(cur.String()), " ")
		cur.Reset()
		return s
	}
	for i := 0; i < len(text); i++ {
		c := text[i]
		if c == '\n' {
			line++
		}
		if inQuote {
			cur.WriteByte(c)
			inQuote = c != '"'
			continue
		}
		switch c {
		case '"':
			inQuote = true
			cur.WriteByte(c)
		case '#':
			for i+1 < len(text) && text[i+1] != '\n' {
				i++
			}
		case '{':
			b := &birdBlock{head: flush()}
			top := stack[len(stack)-1]
			top.children = append(top.children, b)
			stack = append(stack, b)
		case '}':
			if len(stack) == 1 {
				return nil, fmt.Errorf("line %d: '}' closes no block", line)
			}
			if s := flush(); s != "" {
				stack[len(stack)-1].stmts = append(stack[len(stack)-1].stmts, s)
			}
			stack = stack[:len(stack)-1]
		case ';':
			if s := flush(); s != "" {
				stack[len(stack)-1].stmts = append(stack[len(stack)-1].stmts, s)
			}
		default:
			cur.WriteByte(c)
		}
	}
	if len(stack) != 1 || inQuote {
		return nil, fmt.Errorf("unterminated block or string at the end")
	}
	return root, nil
}

// parseGolden extracts the BGP sessions of a golden configuration; family is "IPv4" for
// bird.cfg and "IPv6" for bird6.cfg.
func parseGolden(text, family string) (goldenConfig, error) {
	root, err := parseBIRDBlocks(text)
	if err != nil {
		return goldenConfig{}, err
	}
	var cfg goldenConfig
	templateSeen := false
	for _, b := range root.children {
		if b.head != "template bgp bgp_template" {
			continue
		}
		templateSeen = true
		for _, s := range b.stmts {
			if as, ok, err := localAS(s); err != nil {
				return goldenConfig{}, fmt.Errorf("template bgp_template: %w", err)
			} else if ok {
				cfg.NodeAS = as
			}
		}
	}
	for _, b := range root.children {
		f := strings.Fields(b.head)
		if len(f) < 2 || f[0] != "protocol" || f[1] != "bgp" {
			continue
		}
		if len(f) != 5 || f[3] != "from" || f[4] != "bgp_template" {
			return goldenConfig{}, fmt.Errorf("%q: want `protocol bgp NAME from bgp_template`", b.head)
		}
		if !templateSeen {
			return goldenConfig{}, fmt.Errorf("protocol bgp %s: no `template bgp bgp_template` to take the local AS from", f[2])
		}
		s, err := parseProtocol(f[2], family, b.stmts)
		if err != nil {
			return goldenConfig{}, fmt.Errorf("protocol bgp %s: %w", f[2], err)
		}
		if s.LocalAS == 0 {
			s.LocalAS = cfg.NodeAS
		}
		cfg.Sessions = append(cfg.Sessions, s)
	}
	return cfg, nil
}

// parseProtocol reads the statements of one protocol bgp block that say who the session is
// with; the others (filters, timers, TTL, passwords) have no bearing on the session set.
func parseProtocol(name, family string, stmts []string) (goldenSession, error) {
	s := goldenSession{Name: name, Family: family}
	neighborSeen := false
	for _, stmt := range stmts {
		f := strings.Fields(stmt)
		switch {
		case f[0] == "neighbor":
			if neighborSeen {
				return s, fmt.Errorf("two neighbor statements")
			}
			neighborSeen = true
			if err := parseNeighbor(&s, f[1:]); err != nil {
				return s, fmt.Errorf("%q: %w", stmt, err)
			}
		case f[0] == "local":
			as, ok, err := localAS(stmt)
			if err != nil {
				return s, err
			}
			if ok {
				s.LocalAS = as
			}
		case stmt == "rr client":
			s.RRClient = true
		case len(f) == 4 && f[0] == "rr" && f[1] == "cluster" && f[2] == "id":
			s.ClusterID = f[3]
		}
	}
	if !neighborSeen {
		return s, fmt.Errorf("no neighbor statement")
	}
	return s, nil
}

// parseNeighbor reads `ADDRESS [port N] as N`, the words after `neighbor`.
func parseNeighbor(s *goldenSession, f []string) error {
	if len(f) == 0 {
		return fmt.Errorf("no address")
	}
	ip, err := netip.ParseAddr(f[0])
	if err != nil {
		return err
	}
	s.PeerIP = ip
	asSeen := false
	for i := 1; i < len(f); i += 2 {
		if i+1 >= len(f) {
			return fmt.Errorf("%q without a value", f[i])
		}
		n, err := strconv.ParseUint(f[i+1], 10, 32)
		if err != nil {
			return fmt.Errorf("%s: %w", f[i], err)
		}
		switch f[i] {
		case "port":
			s.Port = int(n)
		case "as":
			s.PeerAS, asSeen = uint32(n), true
		default:
			return fmt.Errorf("unexpected %q", f[i])
		}
	}
	if !asSeen {
		return fmt.Errorf("no AS")
	}
	return nil
}

// localAS reads a `local [ADDRESS] as N` statement; ok is false for any other statement,
// `allow local as N` among them.
func localAS(stmt string) (as uint32, ok bool, err error) {
	f := strings.Fields(stmt)
	if len(f) < 3 || f[0] != "local" || f[len(f)-2] != "as" {
		return 0, false, nil
	}
	n, err := strconv.ParseUint(f[len(f)-1], 10, 32)
	if err != nil {
		return 0, false, fmt.Errorf("%q: %w", stmt, err)
	}
	return uint32(n), true, nil
}

func TestParseGolden(t *testing.T) {
	const cfg = `
# Template for all BGP clients
template bgp bgp_template {
  description "Connection to BGP peer; # not a comment";
  local as 64512;
}

protocol bgp Mesh_10_192_0_3 from bgp_template {
  multihop;
  neighbor 10.192.0.3 port 177 as 64512;
  import filter {
    accept; # a nested block: not the session's
  };
  rr client;
  rr cluster id 10.0.0.1;
}

protocol bgp Node_10_192_0_4 from bgp_template {
  local as 65001;
  neighbor 10.192.0.4 as 64566;
  allow local as 1;
}

protocol bgp Global_2001__102 from bgp_template {
  neighbor 2001::102 as 64567;
}
`
	got, err := parseGolden(cfg, "IPv4")
	if err != nil {
		t.Fatal(err)
	}
	want := goldenConfig{NodeAS: 64512, Sessions: []goldenSession{
		{Name: "Mesh_10_192_0_3", Family: "IPv4", PeerIP: netip.MustParseAddr("10.192.0.3"), Port: 177, PeerAS: 64512, LocalAS: 64512, RRClient: true, ClusterID: "10.0.0.1"},
		{Name: "Node_10_192_0_4", Family: "IPv4", PeerIP: netip.MustParseAddr("10.192.0.4"), PeerAS: 64566, LocalAS: 65001},
		{Name: "Global_2001__102", Family: "IPv4", PeerIP: netip.MustParseAddr("2001::102"), PeerAS: 64567, LocalAS: 64512},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("parseGolden:\n got %+v\nwant %+v", got, want)
	}

	bad := map[string]string{
		"unbalanced":       "template bgp bgp_template { local as 1; ",
		"no neighbor":      "template bgp bgp_template { local as 1; }\nprotocol bgp P from bgp_template { multihop; }",
		"neighbor no AS":   "template bgp bgp_template { local as 1; }\nprotocol bgp P from bgp_template { neighbor 10.0.0.1; }",
		"bad address":      "template bgp bgp_template { local as 1; }\nprotocol bgp P from bgp_template { neighbor 10.0.0 as 1; }",
		"other template":   "template bgp bgp_template { local as 1; }\nprotocol bgp P from other { neighbor 10.0.0.1 as 1; }",
		"no template":      "protocol bgp P from bgp_template { neighbor 10.0.0.1 as 1; }",
		"stray close":      "}",
		"unknown neighbor": "template bgp bgp_template { local as 1; }\nprotocol bgp P from bgp_template { neighbor 10.0.0.1 via 1 as 1; }",
	}
	for name, text := range bad {
		if _, err := parseGolden(text, "IPv4"); err == nil {
			t.Errorf("%s: parseGolden accepted %q", name, text)
		}
	}
}
