package watcher

import (
	"maps"
	"slices"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// maxHeldAlerts bounds the alerts held for one notifier while the state
// database cannot be written. Past it the oldest alerts that neither open
// nor end an incident (repeats, eased notices, events) are dropped, with an
// error log; firing, escalated, resolved and closed notices are never
// dropped.
const maxHeldAlerts = 1000

// merge returns held with b applied after it, as one batch that writes what
// the two would in order: alert states and account states by key, last
// wins; outbox entries coalesced into one per notifier (digests apart), a
// repeat replacing the same incident's earlier repeat and a digest the same
// digest's earlier one. Memory thus stays bounded however long the disk is
// full. Neither argument is modified. It returns the alerts dropped by the
// cap.
func merge(held, b *store.Batch) (*store.Batch, []notifiers.Alert) {
	out := &store.Batch{}
	if held == nil {
		held = &store.Batch{}
	}
	// Alert states: one op per key, in the order keys were first touched.
	put := make(map[rules.Key]rules.State)
	del := make(map[rules.Key]bool)
	var order []rules.Key
	touch := func(k rules.Key) {
		if _, p := put[k]; !p && !del[k] {
			order = append(order, k)
		}
	}
	for _, x := range []*store.Batch{held, b} {
		for _, k := range x.Delete { // Commit applies a batch's deletes first
			touch(k)
			delete(put, k)
			del[k] = true
		}
		for _, st := range x.Put {
			touch(st.Key)
			delete(del, st.Key)
			put[st.Key] = st
		}
	}
	for _, k := range order {
		if st, ok := put[k]; ok {
			out.Put = append(out.Put, st)
		} else {
			out.Delete = append(out.Delete, k)
		}
	}
	if len(held.Accounts)+len(b.Accounts) > 0 {
		out.Accounts = maps.Clone(held.Accounts)
		if out.Accounts == nil {
			out.Accounts = make(map[string]store.AccountState)
		}
		maps.Copy(out.Accounts, b.Accounts)
	}
	var dropped []notifiers.Alert
	for _, e := range slices.Concat(held.Enqueue, b.Enqueue) {
		i := slices.IndexFunc(out.Enqueue, func(o store.Entry) bool {
			return o.Notifier == e.Notifier && isDigest(o) == isDigest(e)
		})
		if i < 0 {
			e.ID = 0
			e.Alerts = slices.Clone(e.Alerts)
			out.Enqueue = append(out.Enqueue, e)
			continue
		}
		o := &out.Enqueue[i]
		if e.Created.After(o.Created) {
			o.Created = e.Created
		}
		for _, a := range e.Alerts {
			o.Alerts = slices.DeleteFunc(o.Alerts, func(x notifiers.Alert) bool { return supersedes(a, x) })
			o.Alerts = append(o.Alerts, a)
		}
		var d []notifiers.Alert
		o.Alerts, d = capAlerts(o.Alerts)
		dropped = append(dropped, d...)
	}
	return out, dropped
}

func isDigest(e store.Entry) bool {
	return len(e.Alerts) > 0 && e.Alerts[0].Kind == notifiers.KindDigest
}

// supersedes reports whether a makes the held notice x pointless: a newer
// repeat of the same incident, or a newer run of the same digest.
func supersedes(a, x notifiers.Alert) bool {
	switch {
	case a.Kind == notifiers.KindRepeat && x.Kind == notifiers.KindRepeat:
		return a.ID == x.ID
	case a.Kind == notifiers.KindDigest && x.Kind == notifiers.KindDigest:
		return a.Rule == x.Rule
	}
	return false
}

// capAlerts drops the oldest droppable alerts past maxHeldAlerts.
func capAlerts(alerts []notifiers.Alert) (kept, dropped []notifiers.Alert) {
	excess := len(alerts) - maxHeldAlerts
	if excess <= 0 {
		return alerts, nil
	}
	kept = alerts[:0:0]
	for _, a := range alerts {
		if excess > 0 && droppable(a.Kind) {
			dropped = append(dropped, a)
			excess--
			continue
		}
		kept = append(kept, a)
	}
	return kept, dropped
}

// droppable kinds neither open nor end an incident.
func droppable(k notifiers.Kind) bool {
	switch k {
	case notifiers.KindFiring, notifiers.KindEscalated, notifiers.KindResolved, notifiers.KindClosed:
		return false
	}
	return true
}

// heldSize counts what a held batch keeps in memory, for logs and tests.
func heldSize(b *store.Batch) (states, accounts, entries, alerts int) {
	if b == nil {
		return 0, 0, 0, 0
	}
	for _, e := range b.Enqueue {
		alerts += len(e.Alerts)
	}
	return len(b.Put) + len(b.Delete), len(b.Accounts), len(b.Enqueue), alerts
}
