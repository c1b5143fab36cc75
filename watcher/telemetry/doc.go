// Package telemetry is how marginwatch is watched from the outside: the
// Prometheus /metrics endpoint, the /healthz probe, the admin HTTP server
// that carries both, and an optional heartbeat (dead man's switch) pinged
// after every successful cycle.
//
// Metrics owns a private prometheus.Registry, never the global one, so tests
// and a reload can build a fresh one and nothing else in the process can
// leak series into the daemon's output. Label values are bounded by the
// config (accounts, rules, notifiers): alert identities such as symbols are
// deliberately not labels, because positions come and go and every new
// label value is a new series kept by Prometheus for weeks.
//
// Delivery counters and the outbox depth are read live at scrape time from
// the dispatcher and the store through a custom collector, so they are never
// stale and need no bookkeeping in the delivery path.
//
// The heartbeat exists because a dead daemon sends no alerts: a service such
// as healthchecks.io expects a ping every cycle and alerts on its own when
// the pings stop.
package telemetry
