package telegramctl

import (
	"strings"
	"testing"
	"time"

	"github.com/go-telegram/bot/models"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/silence"
)

// TestRespond: what each command answers, in valid Telegram HTML (names
// with <, > and & escaped).
func TestRespond(t *testing.T) {
	now := time.Date(2026, 5, 2, 14, 5, 0, 0, time.UTC)
	ctl := func() *fakeControl {
		c := &fakeControl{status: sampleStatus(now), clock: now}
		ms, _ := silence.ParseMatchers([]string{"rule=funding-cost"})
		c.silences = []silence.Silence{{ID: "s9", Matchers: ms, StartsAt: now.Add(-time.Hour), EndsAt: now.Add(time.Hour), Author: "telegram:@carol", Comment: "weekend <funding>"}}
		// The firing alert is silenced by s9 in the daemon's view.
		c.status[0].Silenced = map[rules.Key]string{c.status[0].Alerts[0].Key: "s9"}
		return c
	}
	for _, tc := range []struct {
		cmd     string
		want    []string
		notWant []string
	}{
		{"/status", []string{
			"<b>main</b> (binance-usdm): equity 12345.68 USDT · margin ratio 12.3% · data 4s old",
			"<b>sub</b> (binance-coinm): ⚠️ <b>no fresh data for 5m00s</b>",
			"Alerts: 1 silenced, 1 pending — /alerts",
			"<b>main</b> SOL&lt;&amp;&gt;USDT long · ⚠️ <b>past liquidation</b> by 0.5%",
			"<b>main</b> BTCUSDT long · <b>liq 6.21% away</b> · lev 20x · PnL -12.3%",
		}, nil},
		{"/positions", []string{
			"<b>main</b> (binance-usdm): 3 positions",
			"BTCUSDT long · size 0.5 · <b>liq 6.21% away</b> · lev 20x · PnL -12.3% · mark 61800, liq 58000 · no stop",
			"ETHUSDT short · size 0.5 · liq 25% away",
		}, nil},
		{"/alerts", []string{
			"🔴 <b>SILENCED</b> critical · <b>liquidation-near on main BTCUSDT long</b> · liq_distance_pct 6.21% (threshold 7%) · since 2026-05-02 13:56 UTC · id <code>a1b2c3</code> · silenced by <code>s9</code>",
			"⏳ <b>PENDING</b> warning · <b>margin-high on main</b>",
			"<code>s9</code> <code>rule=funding-cost</code> · until 2026-05-02 15:05 UTC · by telegram:@carol",
			"by telegram:@carol · <i>weekend &lt;funding&gt;</i>",
		}, nil},
		{"/mute rule=margin-high 30m", []string{"🔕 Muted until 2026-05-02 14:35 UTC (30m): <code>rule=margin-high</code>", "id <code>s1</code>", "matches 1 alert"}, nil},
		{"/mute rule=nothing-like-it 1d12h", []string{"(1d12h)", "<i>It matches no alert pending or firing now.</i>"}, nil},
		{"/mute rule=x", []string{"Not muted: give at least one matcher and a duration."}, nil},
		{"/mute rule=x soon", []string{`Not muted: &#34;soon&#34; is not a duration`}, []string{"Muted until"}},
		{"/mute colour=red 1h", []string{`unknown label`}, []string{"Muted until"}},
		{"/unmute s9", []string{"🔔 Silence <code>s9</code> ended: <code>rule=funding-cost</code>"}, nil},
		{"/unmute nope", []string{"No silence <code>nope</code> in force"}, nil},
		{"/ack a1b2c3 on it", []string{"✅ Acknowledged <code>a1b2c3</code>: <b>liquidation-near on main BTCUSDT long</b>"}, nil},
		{"/ack d4e5f6", []string{"No firing alert <code>d4e5f6</code>"}, nil},
		{"/help", []string{"/mute <i>matcher... duration</i> — silence matching alerts", "/ack <i>id [comment]</i>"}, nil},
		{"/frobnicate<b>", []string{"Unknown command /frobnicate&lt;b&gt;.", "<b>marginwatch commands</b>"}, nil},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			name, args, ok := parseCommand(tc.cmd, nil)
			if !ok {
				t.Fatalf("%q is not a command", tc.cmd)
			}
			lines := respond(ctl(), name, args, "telegram:@alice", false, now)
			text := strings.Join(lines, "\n")
			text = strings.ReplaceAll(text, `"`, "&#34;") // how the test writes quotes
			for _, part := range split(lines, maxMessage) {
				if msg := validateMessage(map[string]string{"chat_id": "1", "parse_mode": "HTML", "text": part}); msg != "" {
					t.Errorf("Telegram would refuse the reply: %s\n%s", msg, part)
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("reply lacks %q:\n%s", w, text)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(text, w) {
					t.Errorf("reply has %q:\n%s", w, text)
				}
			}
		})
	}
}

func TestParseCommand(t *testing.T) {
	bot := "mw_test_bot"
	for _, tc := range []struct {
		text, name string
		args       []string
		ok         bool
	}{
		{"/status", "status", nil, true},
		{"/Status@MW_test_bot", "status", nil, true},
		{"/status@otherbot", "", nil, false},
		{"  /mute  rule=x   2h ", "mute", []string{"rule=x", "2h"}, true},
		{"hello /status", "", nil, false},
		{"/", "", nil, false},
	} {
		name, args, ok := parseCommand(tc.text, &bot)
		if name != tc.name || ok != tc.ok || strings.Join(args, " ") != strings.Join(tc.args, " ") {
			t.Errorf("parseCommand(%q) = %q %q %v, want %q %q %v", tc.text, name, args, ok, tc.name, tc.args, tc.ok)
		}
	}
	// Before getMe answered, a command addressed by name may be another
	// bot's: ignored; one without a name is ours.
	if _, _, ok := parseCommand("/mute@otherbot rule=x 2h", nil); ok {
		t.Errorf("/mute@otherbot taken while the username is unknown")
	}
	if name, _, ok := parseCommand("/status", nil); !ok || name != "status" {
		t.Errorf("/status not taken while the username is unknown")
	}
}

func TestParseDuration(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want time.Duration
		err  string
	}{
		{"30m", 30 * time.Minute, ""},
		{"2h", 2 * time.Hour, ""},
		{"1d", 24 * time.Hour, ""},
		{"1d12h", 36 * time.Hour, ""},
		{"0s", 0, "must be more than 0"},
		{"-1h", 0, "must be more than 0"},
		{"2x", 0, "is not a duration"},
		{"1dd", 0, "is not a duration"},
		{"9999d", 0, "too long"},
	} {
		got, err := parseDuration(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseDuration(%q) = %v, %v; want error with %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("parseDuration(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if back, _ := parseDuration(fmtDuration(got)); back != got {
			t.Errorf("fmtDuration(%v) = %q reads back as %v", got, fmtDuration(got), back)
		}
	}
}

// TestSplit: parts stay within the limit, cut only between lines, and a
// line longer than a message is cut to fit as plain text.
func TestSplit(t *testing.T) {
	var lines []string
	for i := range 300 {
		lines = append(lines, "<b>line</b> "+esc(strings.Repeat("é&", i%40)))
	}
	long := "<b>" + strings.Repeat("𝔵<", 3000) + "</b>"
	lines = append(lines, esc(long))
	parts := split(lines, maxMessage)
	if len(parts) < 3 {
		t.Fatalf("%d parts, want several", len(parts))
	}
	var rejoined []string
	for i, p := range parts {
		if units(p) > maxMessage {
			t.Errorf("part %d: %d UTF-16 units", i, units(p))
		}
		if msg := validateMessage(map[string]string{"chat_id": "1", "parse_mode": "HTML", "text": p}); msg != "" {
			t.Errorf("part %d: %s", i, msg)
		}
		rejoined = append(rejoined, strings.Split(p, "\n")...)
	}
	if len(rejoined) != len(lines) {
		t.Fatalf("%d lines after splitting, want %d", len(rejoined), len(lines))
	}
	for i := range len(lines) - 1 {
		if rejoined[i] != lines[i] {
			t.Fatalf("line %d changed: %q", i, rejoined[i])
		}
	}
	if last := rejoined[len(rejoined)-1]; !strings.HasSuffix(last, "…") || !strings.HasPrefix(last, "&lt;b&gt;𝔵&lt;") {
		t.Errorf("the over-long line was not clipped as text: %.60q", last)
	}
}

// TestMuteDurationCap: a silence lasts at most 365 days however the
// duration is written.
func TestMuteDurationCap(t *testing.T) {
	if d, err := parseDuration("365d"); err != nil || d != 365*24*time.Hour {
		t.Errorf("365d = %v, %v", d, err)
	}
	for _, s := range []string{"366d", "8784h", "2562047h", "365d8000h", "365d1s", "9999999999999999999d"} {
		if d, err := parseDuration(s); err == nil || !strings.Contains(err.Error(), "at most 365d") {
			t.Errorf("parseDuration(%q) = %v, %v; want an error saying at most 365d", s, d, err)
		}
	}
}

// TestAuthor: the silence's author is who sent the command: the chat for
// an anonymous group admin (from = @GroupAnonymousBot) or a member
// posting as their channel (from = @Channel_Bot).
func TestAuthor(t *testing.T) {
	group := models.Chat{ID: -100, Type: "supergroup", Title: "desk"}
	for _, tc := range []struct {
		name string
		msg  models.Message
		want string
	}{
		{"user", models.Message{From: &models.User{ID: 5, Username: "alice"}, Chat: group}, "telegram:@alice"},
		{"user without username", models.Message{From: &models.User{ID: 5}, Chat: group}, "telegram:5"},
		{"anonymous admin", models.Message{
			From:       &models.User{ID: 1087968824, IsBot: true, Username: "GroupAnonymousBot"},
			SenderChat: &models.Chat{ID: -100, Type: "supergroup", Title: "desk", Username: "traders_desk"}, Chat: group}, "telegram:@traders_desk"},
		{"as a channel without username", models.Message{
			From:       &models.User{ID: 136817688, IsBot: true, Username: "Channel_Bot"},
			SenderChat: &models.Chat{ID: -1009, Type: "channel"}, Chat: group}, "telegram:-1009"},
		{"channel post", models.Message{Chat: models.Chat{ID: -1007, Type: "channel"}}, "telegram:-1007"},
	} {
		if got := author(&tc.msg); got != tc.want {
			t.Errorf("%s: author = %q, want %q", tc.name, got, tc.want)
		}
	}
}

// TestUnknownCommandInGroup: in a group an unknown command (often meant
// for another bot) gets one line; in a private chat, and for /help, the
// full list.
func TestUnknownCommandInGroup(t *testing.T) {
	now := time.Now()
	ctl := &fakeControl{status: sampleStatus(now)}
	for _, tc := range []struct {
		cmd   string
		group bool
		lines int // 0: the full help
	}{
		{"/shrug", true, 1},
		{"/start", true, 1},
		{"/shrug", false, 0},
		{"/start", false, 0},
		{"/help", true, 0},
	} {
		name, args, _ := parseCommand(tc.cmd, nil)
		lines := respond(ctl, name, args, "telegram:@alice", tc.group, now)
		full := strings.Contains(strings.Join(lines, "\n"), "<b>marginwatch commands</b>")
		switch {
		case tc.lines == 0 && !full:
			t.Errorf("%s (group %v): %q, want the full help", tc.cmd, tc.group, lines)
		case tc.lines > 0 && (len(lines) != tc.lines || full || !strings.Contains(lines[0], "/help")):
			t.Errorf("%s (group %v): %q, want one line pointing to /help", tc.cmd, tc.group, lines)
		}
	}
}
