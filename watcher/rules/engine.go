package rules

import (
	"cmp"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/metrics"
)

// Engine holds the lifecycle state of every pending or firing alert and
// advances it one account evaluation at a time. Its methods are safe for
// concurrent use.
//
// A config reload builds a new Engine from the new rules and the old
// engine's States: incidents of rules that still exist carry on (same ID,
// same repeat timer), the rest are dropped.
type Engine struct {
	mu     sync.Mutex
	rules  []*Rule
	states map[Key]*entry
	// live counts the states of each rule: a rule without any lets a false
	// condition skip the map lookup, which keeps 20 rules × 1,000 positions
	// cheap.
	live []int
	// gen numbers evaluations; evaluated[i] == gen says rule i was evaluated
	// in the current one and entry.seen == gen that its target still exists.
	gen       uint64
	evaluated []uint64
	// dropped are restored states no rule wants any more, reported once in
	// the first Result.Deleted.
	dropped []Key
	// bufs hold each account's Result slices, reused from one evaluation to
	// the next so a quiet evaluation allocates nothing.
	bufs map[string]*buffers
	// liquidations remembers, for liquidationMemory, the positions that
	// liquidation events named (Key without Rule; Side "" for either
	// side): a stream can report the liquidation in one evaluation and
	// the position's disappearance in the next.
	liquidations map[Key]time.Time
	// silencer withholds the notices of silenced alerts; nil silences
	// nothing.
	silencer Silencer
}

// Silencer says whether a silence (or mute window) in force at now
// matches the alert k at severity sev. It must be fast and safe for
// concurrent use: the engine asks it with its lock held, for each notice
// due and, on every evaluation, for each alert a silence held back.
type Silencer interface {
	Silenced(k Key, sev notifiers.Severity, now time.Time) bool
}

// liquidationMemory is how long a liquidation event names the reason of
// its position's disappearance.
const liquidationMemory = 10 * time.Minute

type entry struct {
	st   State
	rule int
	seen uint64
	// dec is the index of the rule condition the alert reports (the one
	// that decided its severity last).
	dec int
	// saved is st.Held as last reported in Result.Changed.
	saved [numSeverities]time.Time
	// last is the alert of the last firing-status notice, sent or
	// withheld (Release re-sends it when its silence ends); zero after a
	// restart until the next one.
	last notifiers.Alert
}

type buffers struct {
	notices []Notice
	changed []State
	deleted []Key
}

// Result is what one Evaluate decided. Its slices belong to the engine and
// are valid until the next Evaluate of the same account; copy what must
// outlive that. A Notice's Notify slice is the rule's own: read it, do not
// modify it. The Alert in each Notice (its Labels and Context maps included)
// is freshly built and the caller's to keep.
type Result struct {
	// Notices are the notifications due, most severe first.
	Notices []Notice
	// Changed are states to write to the store (created, advanced, or with a
	// new severity or repeat timer). A state whose only change is its current
	// Value is not reported, so a steady firing alert costs no write.
	Changed []State
	// Deleted are the keys whose state ended (resolved, back to inactive,
	// or of a rule that no longer exists).
	Deleted []Key
}

// NewEngine returns an engine for rules that resumes from states (as read
// from the store). States are dropped, and reported in the first Evaluate's
// Result.Deleted, when no rule claims them any more: the rule was removed,
// its account or symbol filter now excludes the target, the account left the
// config, the rule changed scope, or the state is malformed. Closing the
// firing ones (Closed) is the caller's job.
func NewEngine(rules []*Rule, states []State) *Engine {
	e := &Engine{
		rules:     slices.Clone(rules),
		states:    make(map[Key]*entry, len(states)),
		live:      make([]int, len(rules)),
		evaluated: make([]uint64, len(rules)),
		bufs:      make(map[string]*buffers),
	}
	for _, st := range states {
		ri := e.claim(&st)
		if ri < 0 {
			e.dropped = append(e.dropped, st.Key)
			continue
		}
		if _, dup := e.states[st.Key]; dup {
			continue
		}
		dec := e.rules[ri].condIndex(st.Metric, st.Op)
		if st.Reported == 0 {
			// Stored before Reported existed: at least the condition the
			// alert reports had a value, so a gap in it cannot resolve it.
			st.Reported = 1 << dec
		}
		e.states[st.Key] = &entry{st: st, rule: ri, dec: dec, saved: st.Held}
		e.live[ri]++
	}
	sortKeys(e.dropped)
	return e
}

// claim returns the index of the rule that owns st, or -1.
func (e *Engine) claim(st *State) int {
	if st.Phase != Pending && st.Phase != Active {
		return -1
	}
	if st.Severity <= notifiers.None || int(st.Severity) >= numSeverities {
		return -1
	}
	for i, r := range e.rules {
		if r.Name != st.Key.Rule || !r.AppliesTo(st.Key.Account) {
			continue
		}
		if len(r.known) > 0 && !slices.Contains(r.known, st.Key.Account) {
			return -1
		}
		switch r.scope {
		case scopeAccountID:
			if st.Key.Side != "" {
				return -1
			}
		case scopePositionID:
			// A symbol the rule no longer watches is no closed position:
			// the state is the caller's to close as orphaned.
			if st.Key.Symbol == "" || !r.symbolOK(st.Key.Symbol) {
				return -1
			}
		default:
			return -1 // event rules keep no state
		}
		return i
	}
	return -1
}

// States returns a copy of every current state, ordered by key.
func (e *Engine) States() []State {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]State, 0, len(e.states))
	for _, en := range e.states {
		out = append(out, en.st)
	}
	slices.SortFunc(out, func(a, b State) int { return cmpKey(a.Key, b.Key) })
	return out
}

// Evaluate evaluates every rule that applies to acct at now and returns the
// notices due and the state changes to persist.
//
// When acct.Stale (the poll failed), only rules on data_age_seconds are
// evaluated and every other alert keeps its state: an exchange failing in a
// crash must not look like recovery. Nor does a stale evaluation ease or
// resolve a firing data_age_seconds alert: its age may read low only because
// the daemon restarted (the watcher counts a restarted daemon's blindness
// from its start), and the exchange has not answered. Events are reported
// either way. A fresh evaluation that lacks one metric keeps that alert's
// state (see step); one that lacks the alert's target closes it (see close).
func (e *Engine) Evaluate(acct *metrics.Account, now time.Time) Result {
	if acct == nil {
		return Result{}
	}
	e.mu.Lock()
	defer e.mu.Unlock()

	b := e.bufs[acct.Name]
	if b == nil {
		b = &buffers{}
		e.bufs[acct.Name] = b
	}
	clear(b.notices) // drop references to the previous alerts' maps
	b.notices, b.changed, b.deleted = b.notices[:0], b.changed[:0], b.deleted[:0]
	if e.dropped != nil {
		b.deleted = append(b.deleted, e.dropped...)
		e.dropped = nil
	}
	e.gen++
	for i := range acct.Events {
		if ev := &acct.Events[i]; ev.Kind == exchanges.Liquidation && ev.Symbol != "" {
			e.noteLiquidation(Key{Account: acct.Name, Symbol: ev.Symbol, Side: string(ev.Side)}, now)
		}
	}

	for ri, r := range e.rules {
		if !r.AppliesTo(acct.Name) {
			continue
		}
		if r.scope == scopeEventID {
			e.events(b, r, acct, now)
			continue
		}
		if acct.Stale && !r.staleOK {
			continue
		}
		e.evaluated[ri] = e.gen
		if r.scope == scopeAccountID {
			e.evalAccount(b, ri, r, acct, now)
			continue
		}
		for i := range acct.Positions {
			p := &acct.Positions[i]
			if !r.symbolOK(p.Symbol) {
				continue
			}
			e.step(b, ri, r, acct, target{sym: p.Symbol, side: string(p.Side), set: &p.Metrics, pos: p}, now)
		}
	}

	// States whose target was not seen (a closed or liquidated position, a
	// margin asset gone) are closed, never resolved; states of rules not
	// evaluated this time (stale poll, other accounts) stay as they are.
	for k, en := range e.states {
		if k.Account != acct.Name || en.seen == e.gen || e.evaluated[en.rule] != e.gen || acct.Stale {
			continue
		}
		e.close(b, en, e.rules[en.rule], acct, now)
	}

	if len(b.notices) > 1 {
		slices.SortStableFunc(b.notices, cmpNotice)
	}
	if len(b.changed) > 1 {
		slices.SortFunc(b.changed, func(a, b State) int { return cmpKey(a.Key, b.Key) })
	}
	if len(b.deleted) > 1 {
		sortKeys(b.deleted)
	}
	return Result{Notices: b.notices, Changed: b.changed, Deleted: b.deleted}
}

func (e *Engine) evalAccount(b *buffers, ri int, r *Rule, acct *metrics.Account, now time.Time) {
	if !perPool(r, acct) {
		e.step(b, ri, r, acct, target{set: &acct.Metrics}, now)
		return
	}
	// Several margin pools: a pool without the metric is a gap (its alert
	// keeps its state); a pool no longer listed, or the account's own alert
	// of when it had one pool, closes.
	for i := range acct.Assets {
		e.step(b, ri, r, acct, poolTarget(acct, i), now)
	}
}

// step advances the alert of rule r on one target.
//
// An absent value is a gap in the exchange's answer, not a sign either way:
// it starts nothing and changes nothing — no resolution, easing, escalation
// or re-fire, a pending alert stays pending however long its `for` — and the
// state keeps its last known Value. A firing alert's repeat timer keeps
// running: as far as anyone knows the alert still fires, so a due repeat goes
// out with the last known value. With several conditions (any:), the
// present ones may start or escalate the alert, but it eases or resolves
// only when no condition that reported a value for it is missing now (one
// that never did, such as an ATR before enough candles, does not count).
//
// A firing alert of a rule with keep_firing_for keeps each severity it
// reached that long after the condition last held it; one of a window: day
// rule keeps it until the next daily reset. Meanwhile nothing is sent but
// the repeats, and the condition coming back sends nothing.
func (e *Engine) step(b *buffers, ri int, r *Rule, acct *metrics.Account, t target, now time.Time) {
	var rd reading
	// The first condition's value settles the common case, a quiet target
	// of a one-condition rule without alerts, before anything else.
	rd.v[0], rd.ok[0] = r.value(&r.conds[0], acct, t, now)
	if e.live[ri] == 0 && len(r.conds) == 1 && (!rd.ok[0] || r.conds[0].severity(rd.v[0]) == notifiers.None) {
		return
	}
	r.read(&rd, acct, t, now, true)
	plain, dec := r.judge(&rd, notifiers.None)
	if plain == notifiers.None && e.live[ri] == 0 {
		return
	}
	k := Key{Account: acct.Name, Rule: r.Name, Symbol: t.sym, Side: t.side}
	en := e.states[k]
	if en == nil {
		if plain == notifiers.None {
			return
		}
		en = &entry{rule: ri, dec: dec, st: State{
			Key:       k,
			Reported:  rd.mask(len(r.conds)),
			Phase:     Pending,
			Severity:  plain,
			Since:     now,
			Value:     rd.v[dec],
			Threshold: r.conds[dec].thr[plain],
		}}
		e.states[k] = en
		e.live[ri]++
		en.seen = e.gen
		if r.forDur > 0 {
			e.persist(b, en)
			return
		}
		e.fire(b, en, r, acct, t, now)
		return
	}
	en.seen = e.gen
	st := &en.st
	gap := rd.gap(st.Reported)
	if m := st.Reported | rd.mask(len(r.conds)); m != st.Reported {
		// A condition has its first value for this alert: store it, or a
		// restart would let a gap in it resolve the alert.
		st.Reported = m
		defer e.persistOnce(b, en, len(b.changed))
	}
	if !rd.some {
		if st.Phase == Active {
			if rep := r.repeat[st.Severity]; rep > 0 && now.Sub(st.LastSent) >= rep {
				e.notify(b, en, r, acct, t, st.Severity, notifiers.KindRepeat, now)
			} else if e.releasable(en, now) {
				e.notify(b, en, r, acct, t, st.Severity, releaseKind(en), now)
			}
		}
		return
	}

	if st.Phase == Pending {
		if plain == notifiers.None {
			if !gap {
				e.remove(b, en)
			}
			return // a condition without a value: no sign either way
		}
		changed := plain != st.Severity
		en.dec = dec
		st.Value = rd.v[dec]
		st.Severity, st.Threshold = plain, r.conds[dec].thr[plain]
		if now.Sub(st.Since) >= r.forDur {
			e.fire(b, en, r, acct, t, now)
			return
		}
		if changed {
			e.persist(b, en)
		}
		return
	}

	sev, dec := r.judge(&rd, st.Severity)
	if r.keeps() {
		for s := notifiers.Info; s <= sev; s++ {
			st.Held[s] = now
		}
	}
	if sev < st.Severity {
		switch {
		case gap:
			sev, dec = st.Severity, -1 // no sign of recovery
		case r.keeps():
			if kept := r.kept(st, now); kept > sev {
				sev, dec = kept, -1
			}
		}
	}
	if dec >= 0 {
		en.dec = dec
	}
	if rd.ok[en.dec] {
		st.Value = rd.v[en.dec]
	}
	if acct.Stale && sev < st.Severity {
		return // no fresh data, so no sign of recovery (see Evaluate)
	}
	switch {
	case sev == notifiers.None:
		e.end(b, en, r, acct, t, now)
	case sev > st.Severity:
		e.notify(b, en, r, acct, t, sev, notifiers.KindEscalated, now)
	case sev < st.Severity:
		e.notify(b, en, r, acct, t, sev, notifiers.KindEased, now)
	default:
		st.Threshold = r.conds[en.dec].thr[sev]
		if rep := r.repeat[sev]; rep > 0 && now.Sub(st.LastSent) >= rep {
			e.notify(b, en, r, acct, t, sev, notifiers.KindRepeat, now)
		} else if e.releasable(en, now) {
			e.notify(b, en, r, acct, t, sev, releaseKind(en), now)
		} else if r.keeps() && e.heldStale(en, r, now) {
			e.persist(b, en)
		}
	}
}

// keeps reports whether the rule's alerts keep a severity after it stops
// holding (keep_firing_for, window: day), which needs State.Held.
func (r *Rule) keeps() bool { return r.keepFor > 0 || r.daily }

// kept is the highest severity up to st's that st still keeps at now: one
// that held within keep_firing_for, or, for a window: day rule, since the
// last daily reset.
func (r *Rule) kept(st *State, now time.Time) notifiers.Severity {
	var reset time.Time
	if r.daily {
		reset = r.lastReset(now)
	}
	for s := min(st.Severity, notifiers.Critical); s > notifiers.None; s-- {
		h := st.Held[s]
		if h.IsZero() {
			continue
		}
		if r.keepFor > 0 && now.Sub(h) < r.keepFor || r.daily && !h.Before(reset) {
			return s
		}
	}
	return notifiers.None
}

// heldStale reports whether en's Held moved on enough since it was last
// persisted that a restart would cut what the alert keeps: at the first
// evaluation the severity no longer holds (so the store has the exact last
// hold), after a twentieth of keep_firing_for (at least a minute) while it
// holds, and on a window: day rule's first hold after a reset.
func (e *Engine) heldStale(en *entry, r *Rule, now time.Time) bool {
	s := min(en.st.Severity, notifiers.Critical)
	cur, saved := en.st.Held[s], en.saved[s]
	switch {
	case cur.Equal(saved):
		return false
	case !cur.Equal(now): // held until just before this evaluation
		return true
	case r.keepFor > 0 && cur.Sub(saved) >= max(time.Minute, r.keepFor/20):
		return true
	}
	return r.daily && saved.Before(r.lastReset(now))
}

// persist reports en's state as changed.
func (e *Engine) persist(b *buffers, en *entry) {
	en.saved = en.st.Held
	b.changed = append(b.changed, en.st)
}

// persistOnce persists en unless it was persisted or removed since b.changed
// had n states.
func (e *Engine) persistOnce(b *buffers, en *entry, n int) {
	if e.states[en.st.Key] == en && len(b.changed) == n {
		e.persist(b, en)
	}
}

// fire starts the incident: pending → firing.
func (e *Engine) fire(b *buffers, en *entry, r *Rule, acct *metrics.Account, t target, now time.Time) {
	st := &en.st
	st.Phase = Active
	st.StartsAt = now
	st.ID = IncidentID(st.Key, "", now)
	if r.keeps() {
		for s := notifiers.Info; s <= min(st.Severity, notifiers.Critical); s++ {
			st.Held[s] = now
		}
	}
	e.notify(b, en, r, acct, t, st.Severity, notifiers.KindFiring, now)
}

// notify sends a firing-status notice at sev, restarts the repeat timer and
// records in the state what the notice told (for Closed). A silenced alert's
// notice is withheld (Muted; Unsent while none of the incident went out),
// an acknowledged alert's repeat too; a rise in severity ends the ack. The
// first notice of an incident that goes out after a silence is a firing
// one, whatever was due.
func (e *Engine) notify(b *buffers, en *entry, r *Rule, acct *metrics.Account, t target, sev notifiers.Severity, kind notifiers.Kind, now time.Time) {
	st := &en.st
	if sev > st.Severity {
		st.Acked, st.AckedBy, st.AckComment = time.Time{}, "", ""
	}
	if st.Unsent {
		kind = notifiers.KindFiring
	}
	c := &r.conds[en.dec]
	st.Severity, st.Threshold = sev, c.thr[sev]
	st.LastSent = now
	a := alert(r, c, acct, t, st, kind, now)
	st.Metric, st.Op, st.Runbook = a.Metric, a.Op, a.Runbook
	if !maps.Equal(st.Labels, a.Labels) {
		// A new map, never one shared with an earlier Changed state or
		// the alert (whose maps are the caller's).
		st.Labels = maps.Clone(a.Labels)
	}
	en.last = a
	withheld := e.withhold(st, kind, now)
	e.persist(b, en) // after withhold: the store must know what was withheld
	if withheld {
		return
	}
	b.notices = append(b.notices, Notice{Alert: a, Notify: r.notify})
}

// withhold decides whether st's notice of kind is withheld, and records
// the outcome in st (the caller persists it).
func (e *Engine) withhold(st *State, kind notifiers.Kind, now time.Time) bool {
	if e.silencer != nil && e.silencer.Silenced(st.Key, st.Severity, now) {
		st.Muted = true
		if kind == notifiers.KindFiring {
			st.Unsent = true
		}
		return true
	}
	st.Muted = false
	if kind == notifiers.KindRepeat && !st.Acked.IsZero() {
		return true
	}
	st.Unsent = false
	return false
}

// releasable reports whether en's last notice was withheld by a silence
// that no longer holds it: the notice is due at once.
func (e *Engine) releasable(en *entry, now time.Time) bool {
	return en.st.Muted && en.st.Phase == Active && (e.silencer == nil || !e.silencer.Silenced(en.st.Key, en.st.Severity, now))
}

// releaseKind is the kind of the notice that follows a silence: firing
// when nothing of the incident went out, the withheld escalation or easing
// (an ack stops neither), else a repeat (still firing). After a restart
// the withheld kind is unknown: a repeat.
func releaseKind(en *entry) notifiers.Kind {
	switch {
	case en.st.Unsent:
		return notifiers.KindFiring
	case en.last.Kind == notifiers.KindEscalated || en.last.Kind == notifiers.KindEased:
		return en.last.Kind
	}
	return notifiers.KindRepeat
}

// SetSilencer makes the engine withhold the notices of the alerts s
// silences; nil silences nothing.
func (e *Engine) SetSilencer(s Silencer) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.silencer = s
}

// Release sends, at now, the notices a silence withheld from alerts that
// still fire and that no silence holds any more (their silence expired or
// was ended): the caller runs it when a silence ends, without waiting for
// the alerts' next evaluation. An alert whose withheld notice is not known
// since a restart is left to its next evaluation, which releases it too.
// The Result's slices are the caller's.
func (e *Engine) Release(now time.Time) Result {
	e.mu.Lock()
	defer e.mu.Unlock()
	var res Result
	for _, en := range e.states {
		if !e.releasable(en, now) || en.last.ID == "" {
			continue
		}
		st := &en.st
		kind := releaseKind(en)
		// The withheld alert as it was rendered (its summary and value
		// agree); any change of severity since would have replaced it.
		a := en.last
		a.Kind, a.At = kind, now
		a.Labels, a.Context = maps.Clone(a.Labels), maps.Clone(a.Context)
		en.last.Kind = kind
		st.LastSent = now
		if !e.withhold(st, kind, now) {
			res.Notices = append(res.Notices, Notice{Alert: a, Notify: e.rules[en.rule].notify})
		}
		en.saved = st.Held
		res.Changed = append(res.Changed, *st)
	}
	slices.SortStableFunc(res.Notices, cmpNotice)
	slices.SortFunc(res.Changed, func(a, b State) int { return cmpKey(a.Key, b.Key) })
	return res
}

// Releasable reports whether Release would send anything at now: a cheap
// check that spares the caller its commit lock when no silence ended on a
// firing alert.
func (e *Engine) Releasable(now time.Time) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, en := range e.states {
		if en.last.ID != "" && e.releasable(en, now) {
			return true
		}
	}
	return false
}

// Ack acknowledges the firing alert whose incident ID is id at now: its
// repeats stop until its severity rises or it ends. It returns the state
// to persist, and false when no firing alert has that ID.
func (e *Engine) Ack(id, by, comment string, now time.Time) (State, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, en := range e.states {
		if en.st.Phase == Active && en.st.ID == id {
			en.st.Acked, en.st.AckedBy, en.st.AckComment = now, by, comment
			en.saved = en.st.Held
			return en.st, true
		}
	}
	return State{}, false
}

// close ends an alert whose target is gone: a pending one silently, a firing
// one with a KindClosed notice (Closed) whose reason is liquidated when this
// evaluation's events, or an earlier one's within liquidationMemory,
// report a liquidation of that position, else closed.
// send_resolved: false silences a plain close but never a liquidation: that
// is exactly what the user must hear about.
func (e *Engine) close(b *buffers, en *entry, r *Rule, acct *metrics.Account, now time.Time) {
	if en.st.Phase == Active {
		reason := notifiers.ReasonClosed
		if r.scope == scopePositionID && (liquidated(acct.Events, en.st.Key) || e.liquidatedLately(en.st.Key, now)) {
			reason = notifiers.ReasonLiquidated
		}
		if !en.st.Unsent && (reason == notifiers.ReasonLiquidated || r.sendResolved) {
			b.notices = append(b.notices, Notice{Alert: closing(r, acct, en.st, reason, now), Notify: r.notify})
		}
	}
	e.remove(b, en)
}

// Inherit takes over what old remembers beyond its alert states (which
// NewEngine restores): the liquidations of the last liquidationMemory, so
// that a reload between a liquidation event and its position's
// disappearance still closes the alerts as liquidated, and the notices
// silences withheld, so that Release can send them at once.
func (e *Engine) Inherit(old *Engine) {
	if old == nil || old == e {
		return
	}
	old.mu.Lock()
	liqs := maps.Clone(old.liquidations)
	last := make(map[Key]notifiers.Alert)
	for k, en := range old.states {
		if en.st.Muted && en.last.ID != "" {
			last[k] = en.last
		}
	}
	old.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.liquidations = liqs
	for k, a := range last {
		if en := e.states[k]; en != nil && en.st.ID == a.ID {
			en.last = a
		}
	}
}

// noteLiquidation remembers a liquidation event of the position k and
// forgets those older than liquidationMemory.
func (e *Engine) noteLiquidation(k Key, now time.Time) {
	if e.liquidations == nil {
		e.liquidations = map[Key]time.Time{}
	}
	for old, at := range e.liquidations {
		if now.Sub(at) > liquidationMemory {
			delete(e.liquidations, old)
		}
	}
	e.liquidations[k] = now
}

// liquidatedLately reports whether a liquidation event named the position
// of the alert k within liquidationMemory, in an earlier evaluation.
func (e *Engine) liquidatedLately(k Key, now time.Time) bool {
	for _, side := range [2]string{k.Side, ""} {
		if at, ok := e.liquidations[Key{Account: k.Account, Symbol: k.Symbol, Side: side}]; ok && now.Sub(at) <= liquidationMemory {
			return true
		}
	}
	return false
}

// liquidated reports whether events hold a liquidation of the position k:
// its symbol, and its side when the event names one.
func liquidated(events []exchanges.Event, k Key) bool {
	for i := range events {
		ev := &events[i]
		if ev.Kind == exchanges.Liquidation && ev.Symbol == k.Symbol && (ev.Side == "" || string(ev.Side) == k.Side) {
			return true
		}
	}
	return false
}

// end finishes an alert whose condition is false: a pending one silently, a
// firing one with a resolution notice when the rule sends them. The
// resolution carries the severity the alert last fired with.
func (e *Engine) end(b *buffers, en *entry, r *Rule, acct *metrics.Account, t target, now time.Time) {
	if en.st.Phase == Active && r.sendResolved && !en.st.Unsent {
		b.notices = append(b.notices, Notice{
			Alert:  alert(r, &r.conds[en.dec], acct, t, &en.st, notifiers.KindResolved, now),
			Notify: r.notify,
		})
	}
	e.remove(b, en)
}

func (e *Engine) remove(b *buffers, en *entry) {
	delete(e.states, en.st.Key)
	e.live[en.rule]--
	b.deleted = append(b.deleted, en.st.Key)
}

// events turns each of the account's events that r watches into a notice.
func (e *Engine) events(b *buffers, r *Rule, acct *metrics.Account, now time.Time) {
	for i := range acct.Events {
		ev := &acct.Events[i]
		if ev.Kind != r.Event || ev.Symbol != "" && !r.symbolOK(ev.Symbol) {
			continue
		}
		if e.silencer != nil && e.silencer.Silenced(Key{Account: acct.Name, Rule: r.Name, Symbol: ev.Symbol, Side: string(ev.Side)}, r.eventSev, now) {
			continue
		}
		b.notices = append(b.notices, Notice{Alert: eventAlert(r, acct, ev, now), Notify: r.notify})
	}
}

func cmpKey(a, b Key) int {
	return cmp.Or(
		cmp.Compare(a.Account, b.Account),
		cmp.Compare(a.Rule, b.Rule),
		cmp.Compare(a.Symbol, b.Symbol),
		cmp.Compare(a.Side, b.Side),
	)
}

func sortKeys(ks []Key) { slices.SortFunc(ks, cmpKey) }

// cmpNotice orders notices most severe first, then firing before resolved,
// then by identity, so one evaluation always yields the same message.
func cmpNotice(a, b Notice) int {
	x, y := &a.Alert, &b.Alert
	return cmp.Or(
		cmp.Compare(y.Severity, x.Severity),
		cmp.Compare(x.Status, y.Status),
		cmp.Compare(x.Rule, y.Rule),
		cmp.Compare(x.Symbol, y.Symbol),
		cmp.Compare(x.Side, y.Side),
		cmp.Compare(x.ID, y.ID),
	)
}
