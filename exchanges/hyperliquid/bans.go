package hyperliquid

import (
	"net/http"

	"github.com/marginwatch/marginwatch/exchanges"
)

// Bans returns the 429 ban in force on this account's host, if any; see
// exchanges.BanKeeper.
func (e *Exchange) Bans() []exchanges.Ban {
	now := e.now()
	l := limitFor(e.host)
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.bannedUntil) {
		return []exchanges.Ban{{Host: e.host, Status: http.StatusTooManyRequests, Until: l.bannedUntil}}
	}
	return nil
}

// RestoreBans re-imposes stored bans on this account's host: nothing is
// sent before their Until. Bans already over, or of other hosts, are
// ignored. A ban longer than the adapter's own backoff came from a
// Retry-After and is kept, up to maxRetryAfter (beyond that the stored
// time is more likely wrong than the venue's wish).
func (e *Exchange) RestoreBans(bans []exchanges.Ban) {
	now := e.now()
	l := limitFor(e.host)
	for _, b := range bans {
		if b.Host != e.host || !now.Before(b.Until) {
			continue
		}
		until := b.Until
		if until.Sub(now) > maxRetryAfter {
			e.log.Warn("a stored Hyperliquid ban ends more than an hour from now; honouring an hour of it", "host", b.Host, "until", b.Until)
			until = now.Add(maxRetryAfter)
		}
		l.mu.Lock()
		if until.After(l.bannedUntil) {
			l.bannedUntil = until
			l.backoff = max(l.backoff, min(until.Sub(now), maxBackoff))
		}
		l.mu.Unlock()
	}
}
