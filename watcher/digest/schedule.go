package digest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/marginwatch/marginwatch/watcher/config"
)

// recheck bounds how long a scheduler loop sleeps before looking at the wall
// clock again. Go timers run on the monotonic clock, which stands still
// while the machine is suspended and ignores wall-clock steps, so one long
// timer could fire hours after the digest's time.
const recheck = time.Minute

// errNoFire is returned by NewScheduler when fire is nil.
var errNoFire = errors.New("digest scheduler needs a fire function")

// Scheduler fires each configured digest on its cron schedule. Create it
// with NewScheduler and call Run once.
type Scheduler struct {
	jobs   []job
	fire   func(config.Digest, time.Time)
	logger *slog.Logger
}

// job is one digest with its parsed schedule.
type job struct {
	digest config.Digest
	sched  cron.Schedule
	loc    *time.Location
}

// NewScheduler parses every digest's schedule. fire is called with the
// digest and the time it runs (at, or a moment after, the scheduled time,
// in the digest's Location); calls for one digest never overlap, calls for
// different digests may. A schedule that does not parse or two digests with
// one name give an error (config validation already rejects both). A nil
// logger discards log lines.
func NewScheduler(digests []config.Digest, fire func(config.Digest, time.Time), logger *slog.Logger) (*Scheduler, error) {
	if fire == nil {
		return nil, errNoFire
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Scheduler{fire: fire, logger: logger}
	seen := make(map[string]bool, len(digests))
	for _, d := range digests {
		if seen[d.Name] {
			return nil, fmt.Errorf("digest %q: duplicate name", d.Name)
		}
		seen[d.Name] = true
		sched, err := config.ParseSchedule(d.Schedule)
		if err != nil {
			return nil, fmt.Errorf("digest %q: schedule %q: %w", d.Name, d.Schedule, err)
		}
		s.jobs = append(s.jobs, job{digest: d, sched: sched, loc: Location(d.Schedule)})
	}
	return s, nil
}

// zonePrefix returns the zone name of a CRON_TZ= or TZ= prefix and the rest
// of the schedule, as cron reads them.
func zonePrefix(spec string) (zone, rest string, ok bool) {
	for _, p := range []string{"CRON_TZ=", "TZ="} {
		if after, found := strings.CutPrefix(spec, p); found {
			zone, rest, _ = strings.Cut(after, " ")
			return zone, rest, true
		}
	}
	return "", spec, false
}

// Location is the time zone of a schedule: its CRON_TZ= (or TZ=) zone, else
// UTC. An unknown zone also gives UTC (config validation rejects it).
// "CRON_TZ=Local" gives UTC too, because that is how the scheduler runs it:
// cron treats the Local zone as "no zone given".
func Location(schedule string) *time.Location {
	zone, _, ok := zonePrefix(schedule)
	if !ok {
		return time.UTC
	}
	loc, err := time.LoadLocation(zone)
	if err != nil || loc == time.Local {
		return time.UTC
	}
	return loc
}

// Next returns, per digest name, the first fire time after now, in the
// digest's Location; the zero time for a schedule that never fires (such
// as "0 0 30 2 *").
func (s *Scheduler) Next(now time.Time) map[string]time.Time {
	out := make(map[string]time.Time, len(s.jobs))
	for _, j := range s.jobs {
		out[j.digest.Name] = j.next(now)
	}
	return out
}

// next is the first fire time of j after now, in j's location. Schedules
// without a zone run in UTC: cron evaluates them in the zone of the time it
// is given.
func (j *job) next(now time.Time) time.Time {
	t := j.sched.Next(now.UTC())
	if t.IsZero() {
		return t
	}
	return t.In(j.loc)
}

// Run fires the digests until ctx is done, then waits for any digest being
// built to finish and returns; with no digests it just waits for ctx. A
// digest missed while the machine slept or while its previous run was still
// busy is sent once, late, not once per missed time. Call Run once.
func (s *Scheduler) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := range s.jobs {
		wg.Go(func() { s.loop(ctx, &s.jobs[i]) })
	}
	<-ctx.Done()
	wg.Wait()
}

// loop runs one digest until ctx is done.
func (s *Scheduler) loop(ctx context.Context, j *job) {
	logger := s.logger.With("digest", j.digest.Name)
	next := j.next(time.Now())
	if next.IsZero() {
		logger.Warn("digest schedule never fires", "schedule", j.digest.Schedule)
		return
	}
	logger.Debug("digest scheduled", "next", next)
	for {
		now := time.Now()
		if now.Before(next) {
			timer := time.NewTimer(min(next.Sub(now), recheck))
			select {
			case <-ctx.Done():
				timer.Stop()
				return
			case <-timer.C:
			}
			continue
		}
		if ctx.Err() != nil {
			return
		}
		s.run(logger, j, now.In(j.loc))
		// Count from the later of the scheduled time and now, so a slow
		// run or a suspended machine skips the missed times instead of
		// sending a burst of digests.
		after := time.Now()
		if after.Before(next) {
			after = next
		}
		next = j.next(after)
		if next.IsZero() {
			logger.Warn("digest schedule never fires again", "schedule", j.digest.Schedule)
			return
		}
		logger.Debug("digest scheduled", "next", next)
	}
}

// run calls fire, turning a panic into a log line: one broken digest must
// not take the daemon down.
func (s *Scheduler) run(logger *slog.Logger, j *job, at time.Time) {
	defer func() {
		if r := recover(); r != nil {
			logger.Error("digest failed", "err", fmt.Sprint(r))
		}
	}()
	s.fire(j.digest, at)
}
