// Package pace spaces a venue's websocket connection attempts, process
// wide, so that hundreds of accounts starting or reconnecting together
// stay inside the venue's limit on connection attempts per IP.
package pace

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// Pacer is a token bucket: a burst of Burst attempts, then one every
// Every. Its methods are safe for concurrent use.
type Pacer struct {
	burst float64
	every time.Duration

	mu   sync.Mutex
	n    float64
	last time.Time
}

// New returns a full Pacer.
func New(burst int, every time.Duration) *Pacer {
	return &Pacer{burst: float64(burst), every: every, n: float64(burst)}
}

// Wait takes one token, waiting for it or for ctx (whose error it then
// returns).
func (p *Pacer) Wait(ctx context.Context) error {
	for {
		p.mu.Lock()
		now := time.Now()
		if !p.last.IsZero() {
			p.n = min(p.burst, p.n+float64(now.Sub(p.last))/float64(p.every))
		}
		p.last = now
		if p.n >= 1 {
			p.n--
			p.mu.Unlock()
			return nil
		}
		wait := time.Duration((1 - p.n) * float64(p.every))
		p.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// Fill refills the bucket (tests: dials of one test do not wait on
// another's).
func (p *Pacer) Fill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n, p.last = p.burst, time.Time{}
}

// Drain empties the bucket as of now (tests: the next attempt waits).
func (p *Pacer) Drain() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n, p.last = 0, time.Now()
}

// Backoff is jittered exponential: each wait is between half and all of
// Min, 2·Min, 4·Min, … up to Max. The zero value is unusable; set both.
type Backoff struct {
	Min, Max time.Duration
	cur      time.Duration
}

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	if b.cur == 0 {
		b.cur = b.Min
	} else {
		b.cur = min(2*b.cur, b.Max)
	}
	return b.cur/2 + rand.N(b.cur/2+1)
}

// Reset starts again from Min.
func (b *Backoff) Reset() { b.cur = 0 }

// Sleep waits d, and reports false when ctx ended first.
func Sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
