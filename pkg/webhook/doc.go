// Package webhook serves rrguard's admission webhooks: /mutate (the reflector label
// auto-fill) and /validate, over TLS, for core/v1 Nodes (and nodes/status), Calico's BGPPeers,
// BGPConfigurations, BGPFilters and IPPools in both API groups.
//
// A Server is a controller-runtime manager. Its informers fill a cluster.Store, the model
// every decision is taken against; admission opens only once each informer's handler has
// delivered its initial list (Synced, the readiness probe). A request is read by the HTTP
// layer (http.go), which bounds it before any decoding: body size and tokens
// (admission.Limits), requests held at once (Limits, inflight.go: 429 past them), slow
// clients (HTTPOptions, listen.go); a review that cannot be judged gets a 400, never a 5xx.
// The decision itself is admission.Reviewer's, taken against the store's snapshot with the
// changes allowed but not yet delivered by the informers laid over it (cluster.Store.Judge),
// so that a burst of writes is judged as the sequence it is.
//
// Around it: Rego policies reloaded from their directories (policies.go) and bound to each
// new snapshot in the background (prepare); the periodic audit and its report, written by
// the elected replica only (audit.Auditor); Prometheus metrics (metrics.go, Recorder).
package webhook
