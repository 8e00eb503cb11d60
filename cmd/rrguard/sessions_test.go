package main

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestSessionsJSON(t *testing.T) {
	code, out, errOut := runCLI(t, "", "sessions", "-f", seedDir, "--node", "uqwst", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got struct {
		Nodes []struct {
			Name      string              `json:"name"`
			AS        uint32              `json:"as"`
			ClusterID string              `json:"clusterID"`
			Learns    map[string][]string `json:"learns"`
			Sessions  []struct {
				Family, PeerIP, PeerNode, Source string
				Port                             int
				PeerAS, LocalAS                  uint32
				RRClient, Established            bool
			} `json:"sessions"`
		} `json:"nodes"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if len(got.Nodes) != 1 || got.Nodes[0].Name != "uqwst" || got.Nodes[0].AS != 63400 || got.Nodes[0].ClusterID != "" {
		t.Fatalf("nodes: %+v", got.Nodes)
	}
	n := got.Nodes[0]
	if len(n.Sessions) != 2 || n.Sessions[0].PeerNode != "zyisy" || n.Sessions[1].PeerNode != "rxgks" ||
		n.Sessions[0].Source != "node-peer-to-rr" || !n.Sessions[0].Established || n.Sessions[0].PeerAS != 63400 {
		t.Errorf("sessions: %+v", n.Sessions)
	}
	if strings.Join(n.Learns["IPv4"], ",") != "qtwtv,rxgks,volwl,zyisy" {
		t.Errorf("learns: %v", n.Learns)
	}
}

func TestSessionsBIRDAndErrors(t *testing.T) {
	code, out, errOut := runCLI(t, "", "sessions", "-f", seedDir, "--node", "zyisy", "-o", "bird")
	if code != 0 || !strings.Contains(out, "protocol bgp Node_10_30_0_14 from bgp_template {\n  neighbor 10.30.0.14 as 63400;") || !strings.Contains(out, "rr client;\n  rr cluster id 1.0.0.1;") {
		t.Errorf("exit %d: %s%s", code, out, errOut)
	}
	if code, _, errOut := runCLI(t, "", "sessions", "-f", seedDir, "--node", "nope"); code != 2 || !strings.Contains(errOut, "--node nope: no such node") {
		t.Errorf("unknown node: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "", "sessions", "-f", seedDir, "-o", "yaml"); code != 2 || !strings.Contains(errOut, `-o "yaml"`) {
		t.Errorf("bad format: exit %d: %s", code, errOut)
	}
}
