package validate

import (
	"fmt"
	"slices"
)

// The rule IDs: public, documented and configurable.
const (
	RuleClusterIDFormat         = "cluster-id-format"
	RuleClusterIDConsistency    = "cluster-id-consistency"
	RuleASNumber                = "as-number"
	RulePeerFields              = "peer-fields"
	RuleSelectorSyntax          = "selector-syntax"
	RuleSelectorMatchesNothing  = "selector-matches-nothing"
	RulePeerTargetsNonReflector = "peer-targets-non-reflector"
	RuleMeshDisable             = "mesh-disable-needs-reflectors"
	RuleRoutePropagation        = "route-propagation"
	RuleReflectorWithoutPeers   = "reflector-without-peers"
	RuleReflectorRedundancy     = "reflector-redundancy"
	RuleReflectorRemoval        = "reflector-removal"
	RuleReflectorLabel          = "reflector-label"
	RuleReflectorAddress        = "reflector-address"
	RuleSessionOneSided         = "session-one-sided"
	RuleFilterNotFound          = "filter-not-found"
)

// Rules is the catalogue of built-in rules, in the order they are documented and evaluated.
// Each rule is defined, with its documentation, beside its check (rules_*.go).
var Rules []Rule

// byID indexes Rules.
var byID map[string]*Rule

func init() {
	Rules = []Rule{
		clusterIDFormatRule,
		clusterIDConsistencyRule,
		asNumberRule,
		peerFieldsRule,
		selectorSyntaxRule,
		selectorMatchesNothingRule,
		peerTargetsNonReflectorRule,
		meshDisableRule,
		routePropagationRule,
		reflectorWithoutPeersRule,
		reflectorRedundancyRule,
		reflectorRemovalRule,
		reflectorLabelRule,
		reflectorAddressRule,
		sessionOneSidedRule,
		filterNotFoundRule,
	}
	byID = make(map[string]*Rule, len(Rules))
	for i := range Rules {
		byID[Rules[i].ID] = &Rules[i]
		Rules[i].Example = examples[Rules[i].ID]
	}
	if err := checkCatalogue(); err != nil {
		panic(err) // a programming error in the catalogue, found by every test run
	}
}

// checkCatalogue checks what rules declare about one another: a check skipped once another
// rule has findings (unless) comes after that rule; a problem reported by another rule names
// one that exists (reportedBy is checked where problems are made, by TestRules).
func checkCatalogue() error {
	for i := range Rules {
		for _, ck := range Rules[i].checks {
			for _, id := range ck.opts().unless {
				j := slices.IndexFunc(Rules, func(r Rule) bool { return r.ID == id })
				if j < 0 || j > i {
					return fmt.Errorf("rule %s: a check is skipped unless %s found nothing, which the catalogue must list before it", Rules[i].ID, id)
				}
			}
		}
	}
	return nil
}

// RuleByID returns the built-in rule with that ID (nil if none).
func RuleByID(id string) *Rule { return byID[id] }

// RuleIDs returns the built-in rules' IDs in catalogue order.
func RuleIDs() []string {
	out := make([]string, len(Rules))
	for i := range Rules {
		out[i] = Rules[i].ID
	}
	return out
}
