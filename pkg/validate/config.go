// Package validate is rrguard's rule catalogue and engine. Evaluate judges one change against
// the cluster state before it (admission); Audit reports everything wrong in a state (the
// periodic audit and the CLI). Both ask the same questions of the same bgp model.
package validate

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"

	"github.com/rrguard/rrguard/pkg/policy"
	"sigs.k8s.io/yaml"
)

// Action is what enforcement does with a finding.
type Action string

// The actions, strongest first.
const (
	Deny  Action = "deny"
	Warn  Action = "warn"
	Audit Action = "audit"
	Off   Action = "off"
)

// UnmarshalJSON accepts the four actions; YAML reads an unquoted off as false, so false is off.
func (a *Action) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "false":
		*a = Off
		return nil
	case "true":
		return fmt.Errorf("an action must be deny, warn, audit or off, not true")
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("an action must be deny, warn, audit or off: %w", err)
	}
	if s == "false" { // sigs.k8s.io/yaml turns an unquoted off into "false" for string fields
		s = string(Off)
	}
	*a = Action(s)
	return nil
}

// Cluster-ID policies.
const (
	ClusterIDAny    = "any"
	ClusterIDShared = "shared"
	ClusterIDUnique = "unique"
)

// Config is rrguard.yaml.
type Config struct {
	// MinReflectors is how many Ready reflectors every client must have (default 2).
	MinReflectors int `json:"minReflectors,omitempty"`
	// ReflectorLabel is the label that marks reflectors (default route-reflector).
	ReflectorLabel string `json:"reflectorLabel,omitempty"`
	// ClusterIDPolicy is any (default), shared (one ID for all reflectors) or unique.
	ClusterIDPolicy string `json:"clusterIDPolicy,omitempty"`
	// Rules sets the action per rule ID.
	Rules map[string]Action `json:"rules,omitempty"`
	// AutoFillLabel is whether the webhook fills in the reflector label (default true);
	// the reflector-label rule reports a missing label only when it does not.
	AutoFillLabel *bool `json:"autoFillLabel,omitempty"`
	// CRDBacked says Calico stores objects in CRDs (Kubernetes datastore), whose schemas
	// declare asNumber as int32 (default true).
	CRDBacked *bool `json:"crdBacked,omitempty"`
	// Enforcement is enforce (default: each rule's action) or audit: every finding is only
	// recorded (audit annotations, metrics, the report) and every change is allowed, the
	// way teams roll a policy engine out.
	Enforcement string `json:"enforcement,omitempty"`
}

// The enforcement modes.
const (
	EnforcementEnforce = "enforce"
	EnforcementAudit   = "audit"
)

// Check reports a configuration error.
func (c *Config) Check() error {
	switch c.Enforcement {
	case "", EnforcementEnforce, EnforcementAudit:
		return nil
	}
	return fmt.Errorf("enforcement must be enforce or audit, not %q", c.Enforcement)
}

// DefaultConfig is the configuration when no file is given.
func DefaultConfig() Config {
	c := Config{}
	c.setDefaults()
	return c
}

func (c *Config) setDefaults() {
	if c.MinReflectors == 0 {
		c.MinReflectors = 2
	}
	if c.ReflectorLabel == "" {
		c.ReflectorLabel = "route-reflector"
	}
	if c.ClusterIDPolicy == "" {
		c.ClusterIDPolicy = ClusterIDAny
	}
	if c.AutoFillLabel == nil {
		t := true
		c.AutoFillLabel = &t
	}
	if c.CRDBacked == nil {
		t := true
		c.CRDBacked = &t
	}
}

// LoadConfig reads and checks an rrguard.yaml.
func LoadConfig(path string) (Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return Config{}, err
	}
	return ParseConfig(raw, path)
}

// ParseConfig parses rrguard.yaml content; name is used in errors.
func ParseConfig(raw []byte, name string) (Config, error) {
	var c Config
	if err := yaml.UnmarshalStrict(raw, &c); err != nil {
		return Config{}, fmt.Errorf("%s: %w", name, err)
	}
	if c.MinReflectors < 0 {
		return Config{}, fmt.Errorf("%s: minReflectors must be at least 1, not %d", name, c.MinReflectors)
	}
	switch c.ClusterIDPolicy {
	case "", ClusterIDAny, ClusterIDShared, ClusterIDUnique:
	default:
		return Config{}, fmt.Errorf("%s: clusterIDPolicy must be any, shared or unique, not %q", name, c.ClusterIDPolicy)
	}
	ids := make([]string, 0, len(c.Rules))
	for id := range c.Rules {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		// Other IDs may name Rego policies, which are loaded later: see UnknownRules.
		if RuleByID(id) == nil && !policy.ValidName(id) {
			return Config{}, fmt.Errorf("%s: rules: unknown rule %q (known: see `rrguard rules`)", name, id)
		}
		switch c.Rules[id] {
		case Deny, Warn, Audit, Off:
		default:
			return Config{}, fmt.Errorf("%s: rules.%s: action must be deny, warn, audit or off, not %q", name, id, c.Rules[id])
		}
	}
	if err := c.Check(); err != nil {
		return Config{}, fmt.Errorf("%s: %w", name, err)
	}
	c.setDefaults()
	return c, nil
}

// ActionFor returns the configured action of a rule (audit for every rule that is not off
// in enforcement mode audit).
func (c *Config) ActionFor(rule string) Action {
	a := c.ruleAction(rule)
	if c.Enforcement == EnforcementAudit && a != Off {
		return Audit
	}
	return a
}

func (c *Config) ruleAction(rule string) Action {
	if a, ok := c.Rules[rule]; ok {
		return a
	}
	if r := RuleByID(rule); r != nil {
		return r.Default
	}
	return Deny
}
