package watcher

import (
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/watcher/silence"
)

// README: data-stale is never silenced.
func TestDataStaleIsNeverSilenced(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &scripted{liq: 50000} // far: nothing fires
		out := &lockedBuffer{}
		w, _ := newTestWatcher(t, repeatConfig, Options{Stdout: out, NewExchange: scriptedExchange(ex)})
		if _, err := w.AddSilence(silence.Silence{Matchers: mustMatchers(t, "account=main"), EndsAt: time.Now().Add(2 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(time.Second)
		synctest.Wait()
		ex.set(50000, true)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		if n := out.lines("data-stale"); n == 0 {
			t.Fatalf("data-stale silenced by account=main (README: never silenced); output:\n%s", out)
		}
	})
}

// README/API: acking data-stale is refused (409).
func TestDataStaleIsNotAckable(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ex := &scripted{liq: 50000}
		out := &lockedBuffer{}
		w, _ := newTestWatcher(t, repeatConfig, Options{Stdout: out, NewExchange: scriptedExchange(ex)})
		stop := runWatcher(t, w)
		defer stop()
		time.Sleep(time.Second)
		synctest.Wait()
		ex.set(50000, true)
		time.Sleep(2 * time.Minute)
		synctest.Wait()
		var id string
		for _, as := range w.Status(time.Now()) {
			for _, a := range as.Alerts {
				if a.Key.Rule == "data-stale" {
					id = a.ID
				}
			}
		}
		if id == "" {
			t.Fatalf("no data-stale:\n%s", out)
		}
		before := out.lines("data-stale")
		if _, err := w.Ack(id, "me", ""); err == nil {
			time.Sleep(2 * time.Hour)
			synctest.Wait()
			t.Fatalf("Ack(data-stale %s) succeeded (README: 409, cannot be acknowledged); data-stale lines before ack %d, after 2h still blind %d", id, before, out.lines("data-stale"))
		}
	})
}

func TestAckSurvivesReloadUntilEscalation(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		path := writeConfig(t, repeatConfig)
		out := &lockedBuffer{}
		ex := &scripted{liq: 88000}
		w, _ := loadWatcher(t, path, nil, Options{Stdout: out, NewExchange: scriptedExchange(ex)})
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
		if _, err := w.Ack(id, "me", ""); err != nil {
			t.Fatal(err)
		}
		w.RequestReload()
		time.Sleep(3 * time.Minute)
		synctest.Wait()
		if n := out.lines("liquidation-near"); n != 1 {
			t.Fatalf("after reload acked alert printed %d:\n%s", n, out)
		}
		ex.set(95000, false)
		time.Sleep(6 * time.Second)
		synctest.Wait()
		if n := out.lines("CRITICAL", "escalated", "liquidation-near"); n != 1 {
			t.Fatalf("escalation %d:\n%s", n, out)
		}
	})
}
