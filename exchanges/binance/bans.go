package binance

import (
	"net/http"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// maxBan bounds a restored ban: Binance's longest IP ban is 3 days, so a
// later Until can only be a damaged record, which must not silence the
// daemon for longer.
const maxBan = 3 * 24 * time.Hour

// hosts are the hosts this account sends to.
func (e *Exchange) hosts() []string {
	hs := []string{hostOf(e.base)}
	if e.spotBase != "" && hostOf(e.spotBase) != hs[0] {
		hs = append(hs, hostOf(e.spotBase))
	}
	return hs
}

// Bans returns the rate-limit bans in force on this account's hosts; see
// exchanges.BanKeeper.
func (e *Exchange) Bans() []exchanges.Ban {
	now := e.now()
	var out []exchanges.Ban
	for _, h := range e.hosts() {
		l := limitFor(h)
		l.mu.Lock()
		if now.Before(l.bannedUntil) {
			out = append(out, exchanges.Ban{Host: h, Status: l.banStatus, Until: l.bannedUntil})
		}
		l.mu.Unlock()
	}
	return out
}

// RestoreBans re-imposes stored bans: nothing is sent to a ban's host
// before its Until. Bans already over are ignored; one longer than Binance
// ever bans (3 days) is cut to that. See exchanges.BanKeeper.
func (e *Exchange) RestoreBans(bans []exchanges.Ban) {
	now := e.now()
	for _, b := range bans {
		if b.Host == "" || !now.Before(b.Until) {
			continue
		}
		until := b.Until
		if until.Sub(now) > maxBan {
			e.log.Warn("a stored Binance ban ends later than Binance ever bans; honouring 3 days of it", "host", b.Host, "until", b.Until)
			until = now.Add(maxBan)
		}
		status := b.Status
		if status != http.StatusTeapot {
			status = http.StatusTooManyRequests
		}
		l := limitFor(b.Host)
		l.mu.Lock()
		if until.After(l.bannedUntil) {
			l.bannedUntil, l.banStatus = until, status
		}
		l.mu.Unlock()
	}
}
