// Package watcher is the marginwatch daemon: it polls every configured
// account, turns each snapshot into metrics, evaluates the rules, persists
// alert state and queued notifications in one bbolt transaction, and hands
// the notifications to the delivery workers.
//
// Data flows one way: exchange → snapshot → metrics → rules → alert state →
// outbox → notifier. Sub-packages hold each step: config, metrics, rules,
// store and delivery.
package watcher
