package delivery

import (
	"cmp"
	"slices"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/store"
)

// Entries groups one evaluation's notices into outbox entries: one Entry per
// notifier that any notice goes to (Notice.Notify nil = every target), in
// the order of all. Alerts are ordered most severe first (firing before
// resolved at equal severity, then by rule, account, symbol, side for
// determinism). all is the list of every target name in config order.
//
// Notify names not in all are ignored (config validation rejects them, and
// an entry no worker reads would sit in the outbox forever); a name listed
// twice counts once; an empty non-nil Notify sends nowhere. Entries are due
// at once: Created and NextAttempt are now.
func Entries(notices []rules.Notice, all []string, now time.Time) []store.Entry {
	index := make(map[string]int, len(all))
	for i, name := range all {
		if _, dup := index[name]; !dup {
			index[name] = i
		}
	}
	per := make([][]notifiers.Alert, len(all))
	for _, n := range notices {
		names := n.Notify
		if names == nil {
			names = all
		}
		sent := make(map[int]bool, len(names))
		for _, name := range names {
			i, ok := index[name]
			if !ok || sent[i] {
				continue
			}
			sent[i] = true
			per[i] = append(per[i], n.Alert)
		}
	}
	var out []store.Entry
	for i, alerts := range per {
		if len(alerts) == 0 {
			continue
		}
		slices.SortStableFunc(alerts, compareAlerts)
		out = append(out, store.Entry{
			Notifier:    all[i],
			Created:     now,
			NextAttempt: now,
			Alerts:      alerts,
		})
	}
	return out
}

// compareAlerts orders alerts for one message: most severe first, firing
// before resolved, then by identity.
func compareAlerts(a, b notifiers.Alert) int {
	if c := cmp.Compare(b.Severity, a.Severity); c != 0 {
		return c
	}
	if c := cmp.Compare(statusRank(a.Status), statusRank(b.Status)); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Rule, b.Rule); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Account, b.Account); c != 0 {
		return c
	}
	if c := cmp.Compare(a.Symbol, b.Symbol); c != 0 {
		return c
	}
	return cmp.Compare(a.Side, b.Side)
}

func statusRank(s notifiers.Status) int {
	if s == notifiers.Resolved {
		return 1
	}
	return 0
}
