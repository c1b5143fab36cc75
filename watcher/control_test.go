package watcher

import (
	"errors"
	"os"
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

// TestOrphanCloseOfUnsentIncident: an alert that fired only while
// silenced (nothing sent) must not get a closing notice when a reload
// removes its rule (SPEC: "never if none did").
func TestOrphanCloseOfUnsentIncident(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := writeConfig(t, repeatConfig)
		out := &lockedBuffer{}
		w, _ := loadWatcher(t, path, nil, Options{Stdout: out, NewExchange: scriptedExchange(&scripted{liq: 95000})})
		if _, err := w.AddSilence(silence.Silence{Matchers: mustMatchers(t, "rule=liquidation-near"), EndsAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := out.lines("liquidation-near"); n != 0 {
			t.Fatalf("silenced alert printed:\n%s", out)
		}
		// Remove the silenced rule.
		edited := strings.Replace(repeatConfig, "  - name: liquidation-near\n    metric: liq_distance_pct\n    below: {warning: 15, critical: 7}\n    hysteresis: 2\n    repeat: 1m\n", "", 1)
		if edited == repeatConfig {
			t.Fatal("edit failed")
		}
		if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
			t.Fatal(err)
		}
		w.RequestReload()
		time.Sleep(3 * time.Second)
		synctest.Wait()
		if n := out.lines("liquidation-near"); n != 0 {
			t.Errorf("a never-sent incident got %d notices on reload:\n%s", n, out)
		}
	})
}

// TestLiveCycleAllocatesNothingWhileSilenced: the quiet streamed path with a
// muted alert that a silence (regexp) or a mute window still holds.
func TestLiveCycleAllocatesNothingWhileSilenced(t *testing.T) {
	for _, tc := range []struct{ name, extra string }{
		{"silence", ""},
		{"window", "mute_windows:\n  - {name: w, schedule: \"0 0 * * *\", duration: 23h, matchers: [\"rule=~liq.*\", \"severity!=info\"]}\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ex := &streamed{scripted: scripted{liq: 95000}, up: true, seeded: true, liveLiq: 95000}
			w, _ := newTestWatcher(t, streamConfig+tc.extra, Options{Stdout: &lockedBuffer{}, NewExchange: scriptedExchange(ex)})
			if tc.extra == "" {
				if _, err := w.AddSilence(silence.Silence{Matchers: mustMatchers(t, "rule=~liq.*", "symbol=~\"BTC.*\""), EndsAt: w.now().Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
			}
			s, _, _ := w.running()
			a := s.accounts[0]
			for range 3 {
				if _, ok, _ := w.liveCycle(a, ex); !ok {
					t.Fatal("live view not trusted")
				}
			}
			muted := false
			for _, st := range w.engine.States() {
				muted = muted || st.Muted
			}
			if !muted {
				t.Fatalf("no muted alert: %+v", w.engine.States())
			}
			allocs := testing.AllocsPerRun(100, func() {
				if _, ok, committed := w.liveCycle(a, ex); !ok || !committed {
					t.Fatal("live cycle failed")
				}
			})
			if allocs != 0 {
				t.Errorf("a quiet streamed change of a silenced alert made %v allocations, want 0", allocs)
			}
		})
	}
}

// TestRestartKeepsUnsent: an incident that fired only while
// silenced; the daemon restarts; the position recovers: no resolution of
// an alert the user never heard of.
func TestRestartKeepsUnsent(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := writeConfig(t, repeatConfig)
		out := &lockedBuffer{}
		w1, st := loadWatcher(t, path, nil, Options{Stdout: out, NewExchange: scriptedExchange(&scripted{liq: 95000})})
		if _, err := w1.AddSilence(silence.Silence{Matchers: mustMatchers(t, "rule=liquidation-near"), EndsAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
		stop := runWatcher(t, w1)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		stop()
		w1.Close()
		if n := out.lines("liquidation-near"); n != 0 {
			t.Fatalf("silenced alert printed:\n%s", out)
		}
		ex := &scripted{liq: 50000} // recovered: 50% away
		w2, _ := loadWatcher(t, path, st, Options{Stdout: out, NewExchange: scriptedExchange(ex)})
		stop2 := runWatcher(t, w2)
		defer stop2()
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := out.lines("liquidation-near"); n != 0 {
			t.Errorf("after a restart a never-sent incident printed %d times:\n%s", n, out)
		}
	})
}

// TestRestartThenExpiry: a silenced firing alert, a restart, the
// silence expired: the alert must go out at the next evaluation, as firing.
func TestRestartThenExpiry(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := writeConfig(t, testConfig+"    repeat: 10m\n")
		out := &lockedBuffer{}
		w1, st := loadWatcher(t, path, nil, Options{Stdout: out, NewExchange: scriptedExchange(&scripted{liq: 95000})})
		s, err := w1.AddSilence(silence.Silence{Matchers: mustMatchers(t, "rule=liquidation-near"), EndsAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		stop := runWatcher(t, w1)
		time.Sleep(10 * time.Second)
		synctest.Wait()
		stop()
		w1.Close()
		w2, _ := loadWatcher(t, path, st, Options{Stdout: out, NewExchange: scriptedExchange(&scripted{liq: 95000})})
		stop2 := runWatcher(t, w2)
		defer stop2()
		time.Sleep(2 * time.Second)
		if _, err := w2.ExpireSilence(s.ID); err != nil {
			t.Fatal(err)
		}
		time.Sleep(6 * time.Second) // one poll
		synctest.Wait()
		if n := out.lines("CRITICAL", "firing", "liquidation-near"); n != 1 {
			t.Errorf("after a restart and the silence's expiry the alert printed %d firing lines within a poll, want 1:\n%s", n, out)
		}
	})
}

// TestControlConcurrency: control calls racing a running daemon.
func TestControlConcurrency(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		out := &lockedBuffer{}
		w, _ := newTestWatcher(t, repeatConfig, Options{Stdout: out, NewExchange: scriptedExchange(&scripted{liq: 95000})})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(6 * time.Second)
		done := make(chan struct{})
		for g := range 3 {
			go func() {
				defer func() { done <- struct{}{} }()
				for i := range 30 {
					switch g {
					case 0:
						s, err := w.AddSilence(silence.Silence{Matchers: mustMatchers(t, "rule=liquidation-near"), EndsAt: time.Now().Add(time.Hour)})
						if err == nil {
							time.Sleep(time.Second)
							w.ExpireSilence(s.ID)
						}
					case 1:
						for _, as := range w.Status(time.Now()) {
							for _, a := range as.Alerts {
								w.Ack(a.ID, "me", "")
							}
						}
						time.Sleep(700 * time.Millisecond)
					case 2:
						_ = w.Silences()
						if i%10 == 0 {
							w.RequestReload()
						}
						time.Sleep(900 * time.Millisecond)
					}
				}
			}()
		}
		for range 3 {
			<-done
		}
	})
}

// TestMuteWindowsReload: mute windows follow the config: one added by a
// reload withholds, and removing it releases the alert at once.
func TestMuteWindowsReload(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := writeConfig(t, testConfig)
		out := &lockedBuffer{}
		ex := &scripted{liq: 88000}
		w, _ := loadWatcher(t, path, nil, Options{Stdout: out, NewExchange: scriptedExchange(ex)})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(time.Second)
		synctest.Wait()
		if n := out.lines("WARNING", "firing", "liquidation-near"); n != 1 {
			t.Fatalf("warning printed %d times, want 1:\n%s", n, out)
		}
		window := testConfig + `mute_windows:
  - {name: all-day, schedule: "0 0 * * *", duration: 24h, matchers: ["severity=critical"]}
`
		if err := os.WriteFile(path, []byte(window), 0o600); err != nil {
			t.Fatal(err)
		}
		w.RequestReload()
		time.Sleep(time.Second)
		synctest.Wait()
		if got := w.Silences(); len(got) != 1 || got[0].ID != "window:all-day" {
			t.Fatalf("after the reload Silences() = %+v, want the window", got)
		}
		ex.set(95000, false) // critical: withheld
		time.Sleep(10 * time.Second)
		synctest.Wait()
		if n := out.lines("CRITICAL"); n != 0 {
			t.Fatalf("escalation printed inside the window:\n%s", out)
		}
		if err := os.WriteFile(path, []byte(testConfig), 0o600); err != nil {
			t.Fatal(err)
		}
		w.RequestReload()
		time.Sleep(time.Second)
		synctest.Wait()
		if n := out.lines("CRITICAL", "escalated", "liquidation-near"); n != 1 {
			t.Errorf("removing the window sent %d escalations at once, want 1:\n%s", n, out)
		}
	})
}

// TestEndedSilencesAreCollected: maintain removes a silence a day after
// it ended, from the store and the daemon's set.
func TestEndedSilencesAreCollected(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := strings.Replace(testConfig, "{poll_interval: 5s, stale_after: 30s}", "{poll_interval: 10m, stale_after: 30m}", 1)
		w, st := newTestWatcher(t, slow, Options{Stdout: &lockedBuffer{}, NewExchange: scriptedExchange(&scripted{liq: 50000})})
		ended, err := w.AddSilence(silence.Silence{Matchers: mustMatchers(t, "rule=liquidation-near"), EndsAt: time.Now().Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.ExpireSilence(ended.ID); err != nil {
			t.Fatal(err)
		}
		kept, err := w.AddSilence(silence.Silence{Matchers: mustMatchers(t, "symbol=ETHUSDT"), EndsAt: time.Now().Add(72 * time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(23 * time.Hour)
		synctest.Wait()
		if got, _ := st.Silences(); len(got) != 2 {
			t.Fatalf("before a day: %d stored silences, want 2", len(got))
		}
		time.Sleep(2 * time.Hour)
		synctest.Wait()
		got, err := st.Silences()
		if err != nil || len(got) != 1 || got[0].ID != kept.ID {
			t.Errorf("after a day: stored %+v (%v), want only %s", got, err, kept.ID)
		}
		if _, ok := w.ctl.set.Load().Get(ended.ID); ok {
			t.Errorf("the ended silence is still in the daemon's set")
		}
	})
}
