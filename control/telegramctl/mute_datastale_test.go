package telegramctl

import (
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/watcher/rules"
)

// TestMuteDoesNotCountDataStale: data-stale is never silenced (watcher
// silencedBy), yet /mute account=sub tells the user the new silence
// matches it.
func TestMuteDoesNotCountDataStale(t *testing.T) {
	now := time.Date(2026, 5, 2, 14, 5, 0, 0, time.UTC)
	c := &fakeControl{status: sampleStatus(now), clock: now}
	c.status[1].Alerts = []rules.State{{ID: "ds1", Key: rules.Key{Account: "sub", Rule: rules.DataStale}, Phase: rules.Active}}
	name, args, _ := parseCommand("/mute account=sub 2h", nil)
	text := strings.Join(respond(c, name, args, "telegram:@alice", false, now), "\n")
	if !strings.Contains(text, "matches no alert") {
		t.Errorf("the silence cannot withhold data-stale, but the reply says:\n%s", text)
	}
}
