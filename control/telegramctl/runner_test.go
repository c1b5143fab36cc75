package telegramctl

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/watcher/config"
)

// TestUnknownChatIgnored: a command from a chat that is not configured
// gets no reply and one log line naming the chat, the user and the
// command, never the token; the configured chat is answered.
func TestUnknownChatIgnored(t *testing.T) {
	f := newFakeAPI(t, testToken)
	url := f.serve()
	var logs syncBuffer
	ctl := &fakeControl{status: sampleStatus(time.Now())}
	start(t, telegramConfig(url, "-100"), ctl, Options{Logger: newLogger(&logs), PollTimeout: 2 * time.Second})

	f.send(999, "mallory", "/mute rule=liquidation-near 2h")
	f.send(-100, "alice", "/help")
	// Commands run in order: once /help is answered, the other was handled.
	waitFor(t, "the reply to /help", func() bool { return len(f.sentTo(-100)) == 1 })
	if got := f.sentTo(999); len(got) != 0 {
		t.Errorf("replied to an unknown chat: %q", got)
	}
	if s := ctl.all(); len(s) != 0 {
		t.Errorf("a command from an unknown chat made silences: %v", s)
	}
	log := logs.String()
	for _, want := range []string{"not configured; ignored", "chat_id=999", "@mallory", "command=mute"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "secret-part") {
		t.Errorf("the token leaked into the log:\n%s", log)
	}
}

// TestMuteUnmuteAck: /mute from the configured chat creates the silence
// (matchers, two hours, the sender as author) and replies with its id;
// /unmute ends it; /ack acknowledges an alert. setMyCommands lists every
// command.
func TestMuteUnmuteAck(t *testing.T) {
	f := newFakeAPI(t, testToken)
	url := f.serve()
	ctl := &fakeControl{status: sampleStatus(time.Now())}
	start(t, telegramConfig(url, "-100"), ctl, Options{PollTimeout: 2 * time.Second})

	before := time.Now()
	f.send(-100, "alice", "/mute rule=liquidation-near symbol=BTCUSDT 2h")
	waitFor(t, "the reply to /mute", func() bool { return len(f.sentTo(-100)) == 1 })
	all := ctl.all()
	if len(all) != 1 {
		t.Fatalf("silences = %v, want one", all)
	}
	s := all[0]
	if got := matchersHTML(s.Matchers); got != "<code>rule=liquidation-near</code> <code>symbol=BTCUSDT</code>" {
		t.Errorf("matchers = %s", got)
	}
	if d := s.EndsAt.Sub(s.StartsAt); d != 2*time.Hour {
		t.Errorf("silence lasts %v, want 2h", d)
	}
	if s.StartsAt.Before(before.Add(-time.Second)) || s.Author != "telegram:@alice" {
		t.Errorf("silence starts %v (sent at %v), author %q", s.StartsAt, before, s.Author)
	}
	reply := f.sentTo(-100)[0]
	for _, want := range []string{"<code>s1</code>", "/unmute s1", "matches 1 alert"} {
		if !strings.Contains(reply, want) {
			t.Errorf("/mute reply lacks %q:\n%s", want, reply)
		}
	}

	f.send(-100, "alice", "/unmute s1")
	f.send(-100, "bob", "/ack a1b2c3 adding margin")
	waitFor(t, "the replies to /unmute and /ack", func() bool { return len(f.sentTo(-100)) == 3 })
	if len(ctl.Silences()) != 0 {
		t.Errorf("silence still in force after /unmute: %v", ctl.Silences())
	}
	if got := f.sentTo(-100)[1]; !strings.Contains(got, "Silence <code>s1</code> ended") {
		t.Errorf("/unmute reply: %s", got)
	}
	st := ctl.Status(time.Now())[0].Alerts[0]
	if st.Acked.IsZero() || st.AckedBy != "telegram:@bob" || st.AckComment != "adding margin" {
		t.Errorf("ack = %v by %q (%q)", st.Acked, st.AckedBy, st.AckComment)
	}

	waitFor(t, "setMyCommands", func() bool { return f.count("setMyCommands") > 0 })
	f.mu.Lock()
	var names []string
	for _, c := range f.commands {
		names = append(names, c["command"])
	}
	f.mu.Unlock()
	want := []string{"status", "positions", "alerts", "mute", "unmute", "ack", "help"}
	if !slices.Equal(names, want) {
		t.Errorf("setMyCommands = %v, want %v", names, want)
	}
	if r := f.refused(); len(r) > 0 {
		t.Errorf("the API refused messages: %v", r)
	}
}

// TestLongReplySplit: a /positions reply longer than one message goes out
// as several, each within Telegram's limit and valid HTML, cut between
// lines.
func TestLongReplySplit(t *testing.T) {
	f := newFakeAPI(t, testToken)
	url := f.serve()
	now := time.Now()
	status := sampleStatus(now)
	for i := range 80 {
		status[0].Latest.Positions = append(status[0].Latest.Positions, position("COIN"+strings.Repeat("X", i%7)+"USDT", "long", float64(30+i)))
	}
	ctl := &fakeControl{status: status}
	start(t, telegramConfig(url, "-100"), ctl, Options{PollTimeout: 2 * time.Second, Now: func() time.Time { return now }})
	f.send(-100, "alice", "/positions")
	want := split(renderPositions(status, now), maxMessage)
	if len(want) < 2 {
		t.Fatalf("the reply fits one message (%d characters): make the test's status longer", len(want[0]))
	}
	waitFor(t, "every part", func() bool { return len(f.sentTo(-100)) == len(want) })
	if r := f.refused(); len(r) > 0 {
		t.Fatalf("the API refused parts: %v", r)
	}
	got := f.sentTo(-100)
	if !slices.Equal(got, want) {
		t.Errorf("parts differ from the reply split at lines")
	}
	for i, p := range got {
		if units(p) > maxMessage {
			t.Errorf("part %d is %d characters long", i+1, units(p))
		}
	}
}

// TestOldCommandNotRun: a command that waited longer than maxCommandAge
// (sent while the daemon was down) is answered, not run.
func TestOldCommandNotRun(t *testing.T) {
	f := newFakeAPI(t, testToken)
	url := f.serve()
	ctl := &fakeControl{status: sampleStatus(time.Now())}
	start(t, telegramConfig(url, "-100"), ctl, Options{PollTimeout: 2 * time.Second, Now: func() time.Time { return time.Now().Add(time.Hour) }})
	f.send(-100, "alice", "/mute rule=x 1h")
	waitFor(t, "the reply", func() bool { return len(f.sentTo(-100)) == 1 })
	if s := ctl.all(); len(s) != 0 {
		t.Errorf("an hour-old /mute ran: %v", s)
	}
	if got := f.sentTo(-100)[0]; !strings.Contains(got, "Not done") {
		t.Errorf("reply: %s", got)
	}
}

// TestReloadChangesChats: after a reload that moves the notifier to
// another chat, the old chat is ignored and the new one answered.
func TestReloadChangesChats(t *testing.T) {
	f := newFakeAPI(t, testToken)
	url := f.serve()
	ctl := &fakeControl{status: sampleStatus(time.Now())}
	r := start(t, telegramConfig(url, "-100"), ctl, Options{PollTimeout: 2 * time.Second})
	f.send(-100, "alice", "/help")
	waitFor(t, "the first reply", func() bool { return len(f.sentTo(-100)) == 1 })
	if err := r.Reload(telegramConfig(url, "-200")); err != nil {
		t.Fatal(err)
	}
	f.send(-100, "alice", "/help")
	f.send(-200, "alice", "/help")
	waitFor(t, "the reply in the new chat", func() bool { return len(f.sentTo(-200)) == 1 })
	if n := len(f.sentTo(-100)); n != 1 {
		t.Errorf("the old chat got %d replies, want 1 (before the reload)", n)
	}
}

// queueBehindLongReply queues /positions (a reply in several parts, sent
// partGap apart) and then a /mute, starts a runner on them and returns
// once the first part is out and the poller has had time to poll again
// (which, with a buffered update channel, confirmed the /mute to
// Telegram before it ran).
func queueBehindLongReply(t *testing.T, f *fakeAPI, cfg func(url string) *config.Config, url string) (*Runner, *fakeControl, context.CancelFunc, chan struct{}) {
	t.Helper()
	status := sampleStatus(time.Now())
	for i := range 80 {
		status[0].Latest.Positions = append(status[0].Latest.Positions, position("COIN"+strings.Repeat("X", i%7)+"USDT", "long", float64(30+i)))
	}
	ctl := &fakeControl{status: status}
	f.send(-100, "alice", "/positions")
	f.send(-100, "alice", "/mute rule=liquidation-near 2h")
	r, err := New(cfg(url), ctl, Options{PollTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	waitFor(t, "the first part", func() bool { return len(f.sentTo(-100)) >= 1 })
	time.Sleep(200 * time.Millisecond)
	return r, ctl, cancel, done
}

func mutedIn(f *fakeAPI, chat int64) bool {
	for _, m := range f.sentTo(chat) {
		if strings.Contains(m, "Muted until") {
			return true
		}
	}
	return false
}

// TestQueuedCommandSurvivesReload: a /mute waiting behind a long reply
// when a reload comes is run and answered, whether the reload only adds
// a chat (the poller keeps running) or changes the bot's timeout (the
// poller restarts).
func TestQueuedCommandSurvivesReload(t *testing.T) {
	for _, tc := range []struct {
		name string
		next func(url string) *config.Config
	}{
		{"chat added", func(url string) *config.Config { return telegramConfig(url, "-100", "-300") }},
		{"timeout changed", func(url string) *config.Config {
			cfg := telegramConfig(url, "-100")
			cfg.Notifiers[0].Timeout = 7 * time.Second
			return cfg
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFakeAPI(t, testToken)
			url := f.serve()
			r, ctl, _, _ := queueBehindLongReply(t, f, func(u string) *config.Config { return telegramConfig(u, "-100") }, url)
			next := tc.next(url)
			if err := r.Reload(next); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the reply to the /mute sent before the reload", func() bool { return mutedIn(f, -100) })
			if n := len(ctl.all()); n != 1 {
				t.Errorf("%d silences, want 1", n)
			}
		})
	}
}

// TestQueuedCommandSurvivesStop: a /mute waiting behind a long reply when
// the daemon stops (SIGTERM) is left to Telegram, so the next start runs
// and answers it.
func TestQueuedCommandSurvivesStop(t *testing.T) {
	f := newFakeAPI(t, testToken)
	url := f.serve()
	cfg := func(u string) *config.Config { return telegramConfig(u, "-100") }
	_, first, cancel, done := queueBehindLongReply(t, f, cfg, url)
	cancel()
	<-done
	ran := len(first.all())
	ctl := &fakeControl{status: sampleStatus(time.Now())}
	start(t, cfg(url), ctl, Options{PollTimeout: 2 * time.Second})
	waitFor(t, "the reply to the /mute sent before the stop", func() bool { return mutedIn(f, -100) })
	if n := ran + len(ctl.all()); n != 1 {
		t.Errorf("the /mute ran %d times, want once", n)
	}
}

// TestReloadOfChatsKeepsPolling: a reload that changes only the chats
// swaps them in place: no second getMe, the new chat answered at once.
func TestReloadOfChatsKeepsPolling(t *testing.T) {
	f := newFakeAPI(t, testToken)
	url := f.serve()
	r := start(t, telegramConfig(url, "-100"), &fakeControl{status: sampleStatus(time.Now())}, Options{PollTimeout: 2 * time.Second})
	waitFor(t, "getMe", func() bool { return f.count("getMe") == 1 })
	if err := r.Reload(telegramConfig(url, "-200", "-300")); err != nil {
		t.Fatal(err)
	}
	f.send(-100, "alice", "/help")
	f.send(-300, "alice", "/help")
	waitFor(t, "the reply in the added chat", func() bool { return len(f.sentTo(-300)) == 1 })
	if n := len(f.sentTo(-100)); n != 0 {
		t.Errorf("the removed chat got %d replies", n)
	}
	if n := f.count("getMe"); n != 1 {
		t.Errorf("getMe called %d times: the poller restarted", n)
	}
}
