package rules

import (
	"fmt"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/silence"
)

// silences adapts a silence.Set the way the watcher does.
type silences struct{ set *silence.Set }

func (s *silences) Silenced(k Key, sev notifiers.Severity, now time.Time) bool {
	t := silence.Target{Account: k.Account, Rule: k.Rule, Symbol: k.Symbol, Side: k.Side, Severity: sev.String()}
	_, ok := s.set.Silenced(&t, now)
	return ok
}

// silenceFor silences matchers from t0+from until t0+to.
func silenceFor(t *testing.T, from, to time.Duration, matchers ...string) silence.Silence {
	t.Helper()
	ms, err := silence.ParseMatchers(matchers)
	if err != nil {
		t.Fatal(err)
	}
	return silence.Silence{ID: "s1", Matchers: ms, StartsAt: t0.Add(from), EndsAt: t0.Add(to)}
}

// liqAt is an account with BTCUSDT and ETHUSDT long at the given liq
// distances.
func liqAt(btc, eth float64) *metrics.Account {
	return positionsAcct("main", pos{"BTCUSDT", "long", metrics.LiqDistancePct, btc}, pos{"ETHUSDT", "long", metrics.LiqDistancePct, eth})
}

func TestSilenceWithholdsOnlyItsAlert(t *testing.T) {
	e := NewEngine(mustCompile(t, liqRule(nil)), nil)
	s := &silences{silence.NewSet([]silence.Silence{silenceFor(t, 0, 30*time.Minute, "symbol=BTCUSDT")}, nil)}
	e.SetSilencer(s)

	steps := []struct {
		at   time.Duration
		btc  float64
		want string
	}{
		{0, 10, ""},                                      // BTC warning withheld
		{time.Minute, 10, ""},                            // nothing due
		{2 * time.Minute, 5, ""},                         // escalation withheld too
		{29 * time.Minute, 5, ""},                        // still silenced
		{30 * time.Minute, 5, "firing:critical:BTCUSDT"}, // silence over: at once, as firing (none went out)
		{31 * time.Minute, 5, ""},                        // and not again
		{41 * time.Minute, 5, "repeat:critical:BTCUSDT"}, // its repeat timer restarted at the release
		{42 * time.Minute, 30, "resolved:critical:BTCUSDT"},
	}
	for i, st := range steps {
		res := e.Evaluate(liqAt(st.btc, 30), t0.Add(st.at))
		if got := summarizeSym(res); got != st.want {
			t.Errorf("step %d (+%s): %q, want %q", i, st.at, got, st.want)
		}
	}

	// The neighbour is not silenced.
	res := e.Evaluate(liqAt(30, 10), t0.Add(43*time.Minute))
	if got := summarizeSym(res); got != "firing:warning:ETHUSDT" {
		t.Errorf("neighbour: %q, want it to fire", got)
	}
}

func TestSilencedIncidentSendsNoResolution(t *testing.T) {
	for _, tc := range []struct {
		name       string
		firstSent  bool
		wantClosed string
	}{
		{"never sent: nothing", false, ""},
		{"firing went out: resolution goes out", true, "resolved:warning:BTCUSDT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := NewEngine(mustCompile(t, liqRule(nil)), nil)
			from := time.Duration(0)
			if tc.firstSent {
				if got := summarizeSym(e.Evaluate(liqAt(10, 30), t0)); got != "firing:warning:BTCUSDT" {
					t.Fatalf("unsilenced first: %q", got)
				}
				from = time.Minute
			}
			e.SetSilencer(&silences{silence.NewSet([]silence.Silence{silenceFor(t, from, time.Hour, "rule=liq", "severity=warning")}, nil)})
			if got := summarizeSym(e.Evaluate(liqAt(10, 30), t0.Add(2*time.Minute))); got != "" {
				t.Fatalf("silenced: %q", got)
			}
			if got := summarizeSym(e.Evaluate(liqAt(30, 30), t0.Add(3*time.Minute))); got != tc.wantClosed {
				t.Errorf("resolution: %q, want %q", got, tc.wantClosed)
			}
		})
	}
}

func TestReleaseAtOnce(t *testing.T) {
	e := NewEngine(mustCompile(t, liqRule(nil)), nil)
	sil := silenceFor(t, 0, time.Hour, "symbol=BTCUSDT")
	e.SetSilencer(&silences{silence.NewSet([]silence.Silence{sil}, nil)})
	if got := summarizeSym(e.Evaluate(liqAt(5, 30), t0)); got != "" {
		t.Fatalf("silenced: %q", got)
	}
	if res := e.Release(t0.Add(time.Minute)); len(res.Notices) != 0 {
		t.Fatalf("released while the silence holds: %q", summarizeSym(res))
	}
	sil.EndsAt = t0.Add(2 * time.Minute) // expired
	e.SetSilencer(&silences{silence.NewSet([]silence.Silence{sil}, nil)})
	res := e.Release(t0.Add(2 * time.Minute))
	if got := summarizeSym(res); got != "firing:critical:BTCUSDT" {
		t.Fatalf("release: %q, want the withheld firing notice", got)
	}
	a := res.Notices[0].Alert
	if a.ID == "" || !a.StartsAt.Equal(t0) || !a.At.Equal(t0.Add(2*time.Minute)) || a.Value != 5 {
		t.Errorf("released alert %+v: want the incident's ID, its start and now", a)
	}
	if len(res.Changed) != 1 || res.Changed[0].Muted || res.Changed[0].Unsent {
		t.Errorf("changed %+v: want the state no longer muted", res.Changed)
	}
	if got := summarizeSym(e.Evaluate(liqAt(5, 30), t0.Add(3*time.Minute))); got != "" {
		t.Errorf("after the release: %q, want nothing twice", got)
	}
	if got := summarizeSym(e.Release(t0.Add(3 * time.Minute))); got != "" {
		t.Errorf("second release: %q", got)
	}
}

// A restart forgets the withheld notice; the next evaluation releases it.
func TestReleaseAfterRestart(t *testing.T) {
	e := NewEngine(mustCompile(t, liqRule(nil)), nil)
	e.SetSilencer(&silences{silence.NewSet([]silence.Silence{silenceFor(t, 0, time.Minute, "symbol=BTCUSDT")}, nil)})
	e.Evaluate(liqAt(5, 30), t0)
	restarted := NewEngine(mustCompile(t, liqRule(nil)), e.States())
	if got := summarizeSym(restarted.Release(t0.Add(2 * time.Minute))); got != "" {
		t.Errorf("release without the notice: %q", got)
	}
	if got := summarizeSym(restarted.Evaluate(liqAt(5, 30), t0.Add(2*time.Minute))); got != "firing:critical:BTCUSDT" {
		t.Errorf("first evaluation after the silence: %q", got)
	}
}

func TestAck(t *testing.T) {
	e := NewEngine(mustCompile(t, liqRule(nil)), nil)
	res := e.Evaluate(liqAt(10, 30), t0)
	if got := summarizeSym(res); got != "firing:warning:BTCUSDT" {
		t.Fatalf("first: %q", got)
	}
	id := res.Notices[0].Alert.ID
	if _, ok := e.Ack("nope", "me", "", t0); ok {
		t.Error("acked an unknown id")
	}
	st, ok := e.Ack(id, "me", "on it", t0.Add(time.Minute))
	if !ok || st.AckedBy != "me" || st.AckComment != "on it" || !st.Acked.Equal(t0.Add(time.Minute)) {
		t.Fatalf("ack: %+v %v", st, ok)
	}
	steps := []struct {
		at   time.Duration
		btc  float64
		want string
	}{
		{time.Hour, 10, ""},     // the warning's hourly repeat: stopped
		{2 * time.Hour, 12, ""}, // still
		{2*time.Hour + time.Minute, 5, "escalated:critical:BTCUSDT"}, // breaks through
		{2*time.Hour + 11*time.Minute, 5, "repeat:critical:BTCUSDT"}, // and the ack is gone
		{2*time.Hour + 12*time.Minute, 30, "resolved:critical:BTCUSDT"},
	}
	for i, s := range steps {
		if got := summarizeSym(e.Evaluate(liqAt(s.btc, 30), t0.Add(s.at))); got != s.want {
			t.Errorf("step %d (+%s): %q, want %q", i, s.at, got, s.want)
		}
	}
}

func TestAckSurvivesRestart(t *testing.T) {
	e := NewEngine(mustCompile(t, liqRule(nil)), nil)
	id := e.Evaluate(liqAt(10, 30), t0).Notices[0].Alert.ID
	if _, ok := e.Ack(id, "me", "", t0); !ok {
		t.Fatal("ack failed")
	}
	restarted := NewEngine(mustCompile(t, liqRule(nil)), e.States())
	if got := summarizeSym(restarted.Evaluate(liqAt(10, 30), t0.Add(time.Hour))); got != "" {
		t.Errorf("repeat after a restart: %q, want the ack kept", got)
	}
}

func TestSilencedEvent(t *testing.T) {
	rs := mustCompile(t, liquidationEvents)
	e := NewEngine(rs, nil)
	e.SetSilencer(&silences{silence.NewSet([]silence.Silence{silenceFor(t, 0, time.Hour, "symbol=ETHUSDT")}, nil)})
	acct := positionsAcct("main")
	acct.Events = liqEvents("BTCUSDT", "ETHUSDT")
	if got := summarizeSym(e.Evaluate(acct, t0)); got != "event:critical:BTCUSDT" {
		t.Errorf("events: %q, want only BTCUSDT's", got)
	}
}

func liqEvents(symbols ...string) []exchanges.Event {
	var evs []exchanges.Event
	for i, s := range symbols {
		evs = append(evs, exchanges.Event{ID: fmt.Sprint("liq", i), Kind: exchanges.Liquidation, Time: t0, Symbol: s, Side: exchanges.Long})
	}
	return evs
}

// A repeat due just as the silence ends is the user's first notice of
// the incident: it goes out as firing.
func TestFirstNoticeAfterSilenceIsFiring(t *testing.T) {
	e := NewEngine(mustCompile(t, liqRule(nil)), nil)
	e.SetSilencer(&silences{silence.NewSet([]silence.Silence{silenceFor(t, 0, 10*time.Minute, "symbol=BTCUSDT")}, nil)})
	e.Evaluate(liqAt(5, 30), t0)
	if got := summarizeSym(e.Evaluate(liqAt(5, 30), t0.Add(10*time.Minute))); got != "firing:critical:BTCUSDT" {
		t.Errorf("repeat due at the silence's end: %q, want firing", got)
	}
}

// TestWithheldStateIsPersisted: the state reported in Result.Changed
// (what the watcher writes to the store) must carry Muted/Unsent, or a
// restart (kill -9) forgets that the incident was never sent.
func TestWithheldStateIsPersisted(t *testing.T) {
	e := NewEngine(mustCompile(t, liqRule(nil)), nil)
	e.SetSilencer(&silences{silence.NewSet([]silence.Silence{silenceFor(t, 0, time.Hour, "symbol=BTCUSDT")}, nil)})
	res := e.Evaluate(liqAt(5, 30), t0)
	if got := summarizeSym(res); got != "" {
		t.Fatalf("silenced: %q", got)
	}
	if len(res.Changed) != 1 || !res.Changed[0].Muted || !res.Changed[0].Unsent {
		t.Fatalf("persisted state %+v: want Muted and Unsent", res.Changed)
	}
}

// TestUnsentIncidentResolvesSilentlyAfterRestart: restart from what was persisted
// (Result.Changed), then the alert resolves: no resolution may go out.
func TestUnsentIncidentResolvesSilentlyAfterRestart(t *testing.T) {
	e := NewEngine(mustCompile(t, liqRule(nil)), nil)
	e.SetSilencer(&silences{silence.NewSet([]silence.Silence{silenceFor(t, 0, time.Hour, "symbol=BTCUSDT")}, nil)})
	res := e.Evaluate(liqAt(5, 30), t0)
	stored := append([]State(nil), res.Changed...)
	restarted := NewEngine(mustCompile(t, liqRule(nil)), stored)
	restarted.SetSilencer(&silences{silence.NewSet([]silence.Silence{silenceFor(t, 0, time.Hour, "symbol=BTCUSDT")}, nil)})
	if got := summarizeSym(restarted.Evaluate(liqAt(30, 30), t0.Add(time.Minute))); got != "" {
		t.Errorf("after a restart, a never-sent incident resolved with %q, want nothing", got)
	}
}

// TestAckedAlertEasedDuringSilence: acked critical, silenced, eases to
// warning while silenced; when the silence ends the user never hears the
// severity dropped (the eased notice is turned into a repeat and the ack
// swallows it), though without the silence it would have gone out.
func TestAckedAlertEasedDuringSilence(t *testing.T) {
	e := NewEngine(mustCompile(t, liqRule(nil)), nil)
	id := e.Evaluate(liqAt(5, 30), t0).Notices[0].Alert.ID
	if _, ok := e.Ack(id, "me", "", t0); !ok {
		t.Fatal("ack")
	}
	sil := silenceFor(t, time.Minute, 10*time.Minute, "symbol=BTCUSDT")
	e.SetSilencer(&silences{silence.NewSet([]silence.Silence{sil}, nil)})
	if got := summarizeSym(e.Evaluate(liqAt(12, 30), t0.Add(2*time.Minute))); got != "" {
		t.Fatalf("silenced eased: %q", got)
	}
	if got := summarizeSym(e.Release(t0.Add(10 * time.Minute))); got == "" {
		t.Errorf("silence ended on a still-firing alert whose eased notice was withheld: nothing sent")
	}
}
