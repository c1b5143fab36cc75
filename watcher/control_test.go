package watcher

import (
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/watcher/silence"
)

// repeatConfig is testConfig with a second rule on the same position and
// a one-minute repeat, so that withheld and acknowledged repeats show.
const repeatConfig = testConfig + `    repeat: 1m
  - name: high-leverage
    metric: leverage
    above: {warning: 3}
`

func mustMatchers(t *testing.T, ss ...string) []silence.Matcher {
	t.Helper()
	ms, err := silence.ParseMatchers(ss)
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestSilenceWithholdsAndExpiryReleasesAtOnce: a silence on one rule
// keeps its alert quiet and not its neighbour's; expiring it sends the
// still-firing alert at once, not at the next poll or repeat.
func TestSilenceWithholdsAndExpiryReleasesAtOnce(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := &lockedBuffer{}
		w, _ := newTestWatcher(t, repeatConfig, Options{Stdout: out, NewExchange: scriptedExchange(&scripted{liq: 95000})})
		s, err := w.AddSilence(silence.Silence{Matchers: mustMatchers(t, "rule=liquidation-near"), EndsAt: time.Now().Add(time.Hour), Author: "me"})
		if err != nil {
			t.Fatal(err)
		}
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if n := out.lines("liquidation-near"); n != 0 {
			t.Fatalf("silenced alert printed %d times:\n%s", n, out)
		}
		if n := out.lines("high-leverage", "firing"); n != 1 {
			t.Fatalf("the neighbour printed %d times, want 1:\n%s", n, out)
		}
		if got := w.Silences(); len(got) != 1 || got[0].ID != s.ID {
			t.Fatalf("Silences() = %+v, want the one added", got)
		}
		var silencedBy string
		for _, as := range w.Status(time.Now()) {
			for k, id := range as.Silenced {
				if k.Rule == "liquidation-near" {
					silencedBy = id
				}
			}
		}
		if silencedBy != s.ID {
			t.Errorf("status names silence %q for the alert, want %q", silencedBy, s.ID)
		}

		time.Sleep(2 * time.Second) // between polls (every 5 s)
		if _, err := w.ExpireSilence(s.ID); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if n := out.lines("CRITICAL", "firing", "liquidation-near"); n != 1 {
			t.Fatalf("after expiry the alert printed %d times at once, want 1 firing:\n%s", n, out)
		}
		if _, err := w.ExpireSilence(s.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("expiring twice: %v, want ErrNotFound", err)
		}
		if got := w.Silences(); len(got) != 0 {
			t.Errorf("Silences() after expiry = %+v", got)
		}
		time.Sleep(30 * time.Second)
		synctest.Wait()
		if n := out.lines("liquidation-near"); n != 1 {
			t.Errorf("released alert printed %d times in 30 s, want once:\n%s", n, out)
		}
	})
}

// TestSilenceSurvivesRestart: a silence lives in the store.
func TestSilenceSurvivesRestart(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := writeConfig(t, repeatConfig)
		out := &lockedBuffer{}
		w1, st := loadWatcher(t, path, nil, Options{Stdout: out, NewExchange: scriptedExchange(&scripted{liq: 95000})})
		s, err := w1.AddSilence(silence.Silence{Matchers: mustMatchers(t, "symbol=~BTC.*", "severity=critical"), EndsAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		w1.Close()
		w2, _ := loadWatcher(t, path, st, Options{Stdout: out, NewExchange: scriptedExchange(&scripted{liq: 95000})})
		if got := w2.Silences(); len(got) != 1 || got[0].ID != s.ID || len(got[0].Matchers) != 2 {
			t.Fatalf("after a restart Silences() = %+v, want %+v", got, s)
		}
		stop := runWatcher(t, w2)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		stop()
		if n := out.lines("liquidation-near"); n != 0 {
			t.Errorf("restored silence did not hold:\n%s", out)
		}
	})
}

// TestMuteWindowEndsOnFiringAlert: a recurring window holds the alert back
// and its end sends it at once.
func TestMuteWindowEndsOnFiringAlert(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// synctest's clock starts at midnight: the window runs 00:00–00:10.
		text := repeatConfig + `mute_windows:
  - {name: midnight, schedule: "0 0 * * *", duration: 10m, matchers: ["rule=liquidation-near"]}
`
		out := &lockedBuffer{}
		w, _ := newTestWatcher(t, text, Options{Stdout: out, NewExchange: scriptedExchange(&scripted{liq: 95000})})
		stop := runWatcher(t, w)
		defer stop()
		if got := w.Silences(); len(got) != 1 || got[0].Window != "midnight" {
			t.Fatalf("Silences() = %+v, want the window", got)
		}
		if _, err := w.ExpireSilence(w.Silences()[0].ID); err == nil || !strings.Contains(err.Error(), "mute_windows") {
			t.Errorf("expiring a window: %v, want a pointer to mute_windows", err)
		}
		time.Sleep(10*time.Minute - time.Second)
		synctest.Wait()
		if n := out.lines("liquidation-near"); n != 0 {
			t.Fatalf("alert printed inside the window:\n%s", out)
		}
		time.Sleep(1100 * time.Millisecond)
		synctest.Wait()
		if n := out.lines("CRITICAL", "firing", "liquidation-near"); n != 1 {
			t.Fatalf("at the window's end the alert printed %d times, want 1 firing:\n%s", n, out)
		}
	})
}

// TestAckStopsRepeatsUntilEscalation.
func TestAckStopsRepeatsUntilEscalation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &scripted{liq: 88000} // 12%: warning
		out := &lockedBuffer{}
		w, st := newTestWatcher(t, repeatConfig, Options{Stdout: out, NewExchange: scriptedExchange(ex)})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(time.Second)
		synctest.Wait()
		var id string
		for _, as := range w.Status(time.Now()) {
			for _, a := range as.Alerts {
				if a.Key.Rule == "liquidation-near" {
					id = a.ID
				}
			}
		}
		if id == "" {
			t.Fatalf("no firing liquidation-near alert:\n%s", out)
		}
		if _, err := w.Ack("0000", "me", ""); !errors.Is(err, ErrNotFound) {
			t.Errorf("ack of an unknown id: %v", err)
		}
		acked, err := w.Ack(id, "me", "adding margin")
		if err != nil || acked.Acked.IsZero() {
			t.Fatalf("Ack: %+v %v", acked, err)
		}
		stored, err := st.AlertStates()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stored {
			if s.ID == id && s.AckedBy != "me" {
				t.Errorf("stored state %+v lacks the ack", s)
			}
		}
		time.Sleep(5 * time.Minute)
		synctest.Wait()
		if n := out.lines("liquidation-near"); n != 1 {
			t.Fatalf("acked alert printed %d times in 5 min of 1 min repeats, want only the first:\n%s", n, out)
		}
		ex.set(95000, false) // 5%: critical
		time.Sleep(6 * time.Second)
		synctest.Wait()
		if n := out.lines("CRITICAL", "liquidation-near"); n != 1 {
			t.Fatalf("escalation printed %d times, want 1:\n%s", n, out)
		}
		time.Sleep(time.Minute)
		synctest.Wait()
		if n := out.lines("CRITICAL", "liquidation-near"); n != 2 {
			t.Errorf("after the escalation the repeats did not resume (%d critical lines):\n%s", n, out)
		}
	})
}
