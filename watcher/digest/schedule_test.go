package digest

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/marginwatch/marginwatch/watcher/config"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatalf("load %s: %v", name, err)
	}
	return loc
}

func utc(y int, mo time.Month, d, h, mi, s int) time.Time {
	return time.Date(y, mo, d, h, mi, s, 0, time.UTC)
}

func TestNext(t *testing.T) {
	tokyo := mustLoad(t, "Asia/Tokyo")
	tests := []struct {
		name     string
		schedule string
		now      time.Time
		want     time.Time // an instant; zero for never
		wantZone string    // the zone the result is shown in
	}{
		{"daily at 8 UTC", "0 8 * * *", utc(2024, 3, 31, 7, 59, 0), utc(2024, 3, 31, 8, 0, 0), "UTC"},
		{"at the fire time: the next day", "0 8 * * *", utc(2024, 3, 31, 8, 0, 0), utc(2024, 4, 1, 8, 0, 0), "UTC"},
		{"no zone means UTC, not now's zone", "0 8 * * *", time.Date(2024, 3, 31, 12, 0, 0, 0, tokyo), utc(2024, 3, 31, 8, 0, 0), "UTC"}, // in JST it would be 23:00 UTC,
		// 2024-03-31 02:00 CET became 03:00 CEST: 08:00 that day is 06:00 UTC.
		{"Berlin across spring DST", "CRON_TZ=Europe/Berlin 0 8 * * *", utc(2024, 3, 30, 8, 0, 0), utc(2024, 3, 31, 6, 0, 0), "CEST"},
		// 2024-10-27 03:00 CEST became 02:00 CET: 08:00 that day is 07:00 UTC.
		{"Berlin across autumn DST", "CRON_TZ=Europe/Berlin 0 8 * * *", utc(2024, 10, 26, 7, 0, 0), utc(2024, 10, 27, 7, 0, 0), "CET"},
		{"TZ= prefix", "TZ=Asia/Tokyo 30 9 * * *", utc(2024, 3, 31, 0, 0, 0), utc(2024, 3, 31, 0, 30, 0), "JST"},
		{"@daily", "@daily", utc(2024, 3, 31, 12, 0, 0), utc(2024, 4, 1, 0, 0, 0), "UTC"},
		// Berlin midnight of 2024-03-31 is still CET (+1).
		{"@daily in Berlin", "CRON_TZ=Europe/Berlin @daily", utc(2024, 3, 30, 12, 0, 0), utc(2024, 3, 30, 23, 0, 0), "CET"},
		{"weekdays only", "0 8 * * 1-5", utc(2024, 3, 30, 9, 0, 0), utc(2024, 4, 1, 8, 0, 0), "UTC"}, // Saturday → Monday
		{"@every counts from now", "@every 1h", time.Date(2024, 3, 31, 12, 0, 0, 500, time.UTC), utc(2024, 3, 31, 13, 0, 0), "UTC"},
		{"never", "0 0 30 2 *", utc(2024, 3, 31, 0, 0, 0), time.Time{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewScheduler([]config.Digest{{Name: "d", Schedule: tt.schedule}}, func(config.Digest, time.Time) {}, nil)
			if err != nil {
				t.Fatalf("NewScheduler: %v", err)
			}
			got := s.Next(tt.now)
			if len(got) != 1 {
				t.Fatalf("Next = %v, want one entry", got)
			}
			g := got["d"]
			if !g.Equal(tt.want) || g.IsZero() != tt.want.IsZero() {
				t.Fatalf("Next(%s) = %s, want %s", tt.now, g, tt.want)
			}
			if zone, _ := g.Zone(); !g.IsZero() && zone != tt.wantZone {
				t.Errorf("Next(%s) is shown in %s, want %s", tt.now, zone, tt.wantZone)
			}
		})
	}
}

func TestNextSeveral(t *testing.T) {
	s, err := NewScheduler([]config.Digest{
		{Name: "morning", Schedule: "CRON_TZ=Europe/Berlin 0 8 * * *"},
		{Name: "evening", Schedule: "0 20 * * *"},
	}, func(config.Digest, time.Time) {}, nil)
	if err != nil {
		t.Fatalf("NewScheduler: %v", err)
	}
	got := s.Next(utc(2024, 1, 15, 12, 0, 0))
	want := map[string]time.Time{
		"morning": utc(2024, 1, 16, 7, 0, 0), // CET = UTC+1
		"evening": utc(2024, 1, 15, 20, 0, 0),
	}
	if len(got) != len(want) {
		t.Fatalf("Next = %v, want %v", got, want)
	}
	for name, w := range want {
		if !got[name].Equal(w) {
			t.Errorf("Next[%s] = %s, want %s", name, got[name], w)
		}
	}
}

func TestNewSchedulerErrors(t *testing.T) {
	noop := func(config.Digest, time.Time) {}
	tests := []struct {
		name    string
		digests []config.Digest
		fire    func(config.Digest, time.Time)
		wantErr string // "" for success
	}{
		{"none", nil, noop, ""},
		{"fine", []config.Digest{{Name: "a", Schedule: "0 8 * * *"}, {Name: "b", Schedule: "@weekly"}}, noop, ""},
		{"no fire", []config.Digest{{Name: "a", Schedule: "0 8 * * *"}}, nil, "needs a fire function"},
		{"bad field", []config.Digest{{Name: "a", Schedule: "0 25 * * *"}}, noop, `digest "a": schedule "0 25 * * *"`},
		{"six fields", []config.Digest{{Name: "a", Schedule: "0 0 8 * * *"}}, noop, `digest "a"`},
		{"zone only", []config.Digest{{Name: "a", Schedule: "CRON_TZ=Europe/Berlin"}}, noop, "no schedule after the time zone"},
		{"unknown zone", []config.Digest{{Name: "a", Schedule: "CRON_TZ=Nowhere/Land 0 8 * * *"}}, noop, "Nowhere/Land"},
		{"empty", []config.Digest{{Name: "a", Schedule: ""}}, noop, "empty spec"},
		{"duplicate", []config.Digest{{Name: "a", Schedule: "@daily"}, {Name: "a", Schedule: "@hourly"}}, noop, `digest "a": duplicate name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := NewScheduler(tt.digests, tt.fire, nil)
			if tt.wantErr == "" {
				if err != nil || s == nil {
					t.Fatalf("NewScheduler = %v, %v; want a scheduler", s, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewScheduler error = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestLocation(t *testing.T) {
	tests := []struct {
		schedule, want string
	}{
		{"CRON_TZ=Europe/Berlin 0 8 * * *", "Europe/Berlin"},
		{"TZ=Asia/Tokyo @daily", "Asia/Tokyo"},
		{"CRON_TZ=UTC 0 8 * * *", "UTC"},
		{"0 8 * * *", "UTC"},
		{"@daily", "UTC"},
		{"", "UTC"},
		{"CRON_TZ=Nowhere/Land 0 8 * * *", "UTC"},
		{"CRON_TZ=Local 0 8 * * *", "UTC"}, // cron runs it unzoned, i.e. in UTC here
		{"CRON_TZ=Europe/Berlin", "Europe/Berlin"},
		{" CRON_TZ=Europe/Berlin 0 8 * * *", "UTC"}, // not a prefix, as for cron
	}
	for _, tt := range tests {
		if got := Location(tt.schedule).String(); got != tt.want {
			t.Errorf("Location(%q) = %s, want %s", tt.schedule, got, tt.want)
		}
	}
}

// firing records fire calls.
type firing struct {
	mu    sync.Mutex
	calls []string
}

func (f *firing) record(d config.Digest, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, d.Name+" "+at.Format("2006-01-02 15:04:05 MST"))
}

func (f *firing) got() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.calls)
}

// runFor runs s in the bubble for d of fake time, then stops it and checks
// that Run returns.
func runFor(t *testing.T, s *Scheduler, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		s.Run(ctx)
		close(done)
	}()
	time.Sleep(d)
	cancel()
	synctest.Wait()
	select {
	case <-done:
	default:
		t.Fatal("Run did not return after its context was cancelled")
	}
}

func TestRunFires(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		// The bubble's clock starts at 2000-01-01 00:00 UTC (CET = UTC+1).
		var f firing
		s, err := NewScheduler([]config.Digest{
			{Name: "utc", Schedule: "0 8 * * *"},
			{Name: "berlin", Schedule: "CRON_TZ=Europe/Berlin 0 8 * * *"},
			{Name: "hourly", Schedule: "@every 20h"},
		}, f.record, nil)
		if err != nil {
			t.Fatalf("NewScheduler: %v", err)
		}
		runFor(t, s, 32*time.Hour+30*time.Minute)
		want := []string{
			"berlin 2000-01-01 08:00:00 CET",
			"utc 2000-01-01 08:00:00 UTC",
			"hourly 2000-01-01 20:00:00 UTC",
			"berlin 2000-01-02 08:00:00 CET",
			"utc 2000-01-02 08:00:00 UTC",
		}
		if got := f.got(); !slices.Equal(got, want) {
			t.Errorf("fired %q\nwant  %q", got, want)
		}
	})
}

func TestRunSkipsMissedTimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f firing
		slow := func(d config.Digest, at time.Time) {
			f.record(d, at)
			if len(f.got()) == 1 {
				time.Sleep(50 * time.Hour) // the first run ends 2000-01-03 10:00
			}
		}
		s, err := NewScheduler([]config.Digest{{Name: "d", Schedule: "0 8 * * *"}}, slow, nil)
		if err != nil {
			t.Fatalf("NewScheduler: %v", err)
		}
		runFor(t, s, 4*24*time.Hour+9*time.Hour)
		want := []string{
			"d 2000-01-01 08:00:00 UTC",
			// 01-02 08:00 and 01-03 08:00 passed during the first run.
			"d 2000-01-04 08:00:00 UTC",
			"d 2000-01-05 08:00:00 UTC",
		}
		if got := f.got(); !slices.Equal(got, want) {
			t.Errorf("fired %q\nwant  %q", got, want)
		}
	})
}

func TestRunWaitsForRunningDigest(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		started, release := make(chan struct{}), make(chan struct{})
		finished := false
		fire := func(config.Digest, time.Time) {
			close(started)
			<-release
			finished = true
		}
		s, err := NewScheduler([]config.Digest{{Name: "d", Schedule: "@hourly"}}, fire, nil)
		if err != nil {
			t.Fatalf("NewScheduler: %v", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			s.Run(ctx)
			close(done)
		}()
		<-started
		cancel()
		synctest.Wait()
		select {
		case <-done:
			t.Fatal("Run returned while a digest was still being built")
		default:
		}
		close(release)
		<-done
		if !finished {
			t.Error("Run returned before fire finished")
		}
	})
}

func TestRunSurvivesPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var (
			f    firing
			logs bytes.Buffer
			mu   sync.Mutex
		)
		fire := func(d config.Digest, at time.Time) {
			f.record(d, at)
			if len(f.got()) == 1 {
				panic("boom")
			}
		}
		logger := slog.New(slog.NewTextHandler(&lockedWriter{w: &logs, mu: &mu}, nil))
		s, err := NewScheduler([]config.Digest{{Name: "d", Schedule: "@every 1h"}}, fire, logger)
		if err != nil {
			t.Fatalf("NewScheduler: %v", err)
		}
		runFor(t, s, 2*time.Hour+time.Minute)
		want := []string{"d 2000-01-01 01:00:00 UTC", "d 2000-01-01 02:00:00 UTC"}
		if got := f.got(); !slices.Equal(got, want) {
			t.Errorf("fired %q, want %q", got, want)
		}
		mu.Lock()
		defer mu.Unlock()
		if out := logs.String(); !strings.Contains(out, `msg="digest failed" digest=d err=boom`) {
			t.Errorf("log = %q, want the panic logged", out)
		}
	})
}

func TestRunNeverFiringSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var f firing
		s, err := NewScheduler([]config.Digest{{Name: "feb30", Schedule: "0 0 30 2 *"}, {Name: "d", Schedule: "@daily"}}, f.record, nil)
		if err != nil {
			t.Fatalf("NewScheduler: %v", err)
		}
		runFor(t, s, 25*time.Hour)
		if got, want := f.got(), []string{"d 2000-01-02 00:00:00 UTC"}; !slices.Equal(got, want) {
			t.Errorf("fired %q, want %q", got, want)
		}
	})
}

// lockedWriter serialises writes from the scheduler's goroutines.
type lockedWriter struct {
	w  *bytes.Buffer
	mu *sync.Mutex
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func TestRunWithoutDigestsWaitsForContext(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := NewScheduler(nil, func(config.Digest, time.Time) { t.Error("fired without digests") }, nil)
		if err != nil {
			t.Fatalf("NewScheduler: %v", err)
		}
		ctx, cancel := context.WithCancel(t.Context())
		done := make(chan struct{})
		go func() {
			s.Run(ctx)
			close(done)
		}()
		time.Sleep(time.Hour)
		select {
		case <-done:
			t.Fatal("Run returned before its context was cancelled")
		default:
		}
		cancel()
		<-done
	})
}
