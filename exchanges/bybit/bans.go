package bybit

import (
	"net/http"
	"net/url"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// maxBan bounds a restored ban: Bybit's documented IP ban is "at least 10
// minutes"; a stored Until more than a day away can only be damaged.
const maxBan = 24 * time.Hour

func hostOf(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	return u.Host
}

// Bans returns the bans in force on this account's host (Status 403: IP
// ban; 10006 and 10018: Bybit's rate-limit retCodes); see
// exchanges.BanKeeper.
func (e *Exchange) Bans() []exchanges.Ban {
	h := hostOf(e.base)
	l := limitFor(h)
	now := e.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Before(l.bannedUntil) {
		return []exchanges.Ban{{Host: h, Status: l.banStatus, Until: l.bannedUntil}}
	}
	return nil
}

// RestoreBans re-imposes stored bans: nothing is sent to a ban's host
// before its Until. See exchanges.BanKeeper.
func (e *Exchange) RestoreBans(bans []exchanges.Ban) {
	now := e.now()
	for _, b := range bans {
		if b.Host == "" || !now.Before(b.Until) {
			continue
		}
		until := b.Until
		if until.Sub(now) > maxBan {
			e.log.Warn("a stored Bybit ban ends later than plausible; honouring a day of it", "host", b.Host, "until", b.Until)
			until = now.Add(maxBan)
		}
		status := b.Status
		if status != http.StatusForbidden && !isRateLimitCode(status) {
			status = codeRateLimit
		}
		l := limitFor(b.Host)
		l.mu.Lock()
		l.ban(until, status)
		l.mu.Unlock()
	}
}
