package telegramctl

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

// TestPollFailuresBackOff: a getUpdates answered with 409 (another
// poller, or a webhook) or 401 is logged once, with its fix, and retried
// with a growing wait, not in a loop; once Telegram answers again the
// bot says so and takes commands.
func TestPollFailuresBackOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail apiFailure
		want []string
	}{
		{"other poller", apiFailure{http.StatusConflict, "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"},
			[]string{"level=ERROR", "another program is polling this bot token", "commands: false on notifier phone0"}},
		{"webhook", apiFailure{http.StatusConflict, "Conflict: can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"},
			[]string{"level=ERROR", "a webhook is set on this bot", "deleteWebhook"}},
		{"token rejected", apiFailure{http.StatusUnauthorized, "Unauthorized"},
			[]string{"level=ERROR", "rejected the bot token", "check token or token_file of notifier phone0"}},
		{"server error", apiFailure{http.StatusBadGateway, "Bad Gateway"},
			[]string{"level=WARN", "getUpdates failed; retrying"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeAPI(t, testToken)
				f.failUpdates(&tc.fail)
				var logs syncBuffer
				r, err := New(telegramConfig("http://telegram.test", "-100"), &fakeControl{}, Options{
					Logger: newLogger(&logs), HTTPClient: f.client(), PollTimeout: 30 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				go func() { defer close(done); r.Run(ctx) }()

				time.Sleep(10 * time.Minute)
				synctest.Wait()
				// Waits of 1, 2, 4 … 60 s between attempts (plus the
				// library's 0.1 … 5 s): about 15 attempts in 10 minutes.
				n := f.count("getUpdates")
				if n < 5 || n > 25 {
					t.Errorf("%d getUpdates in 10 minutes of failures, want 5..25 (retried, not looped)", n)
				}
				log := logs.String()
				for _, want := range tc.want {
					if !strings.Contains(log, want) {
						t.Errorf("log lacks %q:\n%s", want, log)
					}
				}
				if c := strings.Count(log, "retrying"); c != 1 {
					t.Errorf("the failure was logged %d times, want once:\n%s", c, log)
				}
				if strings.Contains(log, "secret-part") {
					t.Errorf("the token leaked into the log:\n%s", log)
				}

				f.failUpdates(nil)
				f.send(-100, "alice", "/help")
				time.Sleep(2 * time.Minute)
				synctest.Wait()
				if len(f.sentTo(-100)) != 1 {
					t.Errorf("no reply after polling recovered")
				}
				if !strings.Contains(logs.String(), "polling works again") {
					t.Errorf("recovery not logged:\n%s", logs.String())
				}
				cancel()
				<-done
			})
		})
	}
}

// TestCommandForAnotherBot: "/mute@other_alerts_bot" in an allowed group
// is not ours and makes no silence, also while getMe is slow or failing;
// plain commands are answered meanwhile, and "@mw_test_bot" ones once
// getMe has answered.
func TestCommandForAnotherBot(t *testing.T) {
	for _, tc := range []struct {
		name    string
		meDelay time.Duration
		meFail  *apiFailure
	}{
		{"getMe slow", 20 * time.Second, nil},
		{"getMe failing", 0, &apiFailure{http.StatusBadGateway, "Bad Gateway"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := newFakeAPI(t, testToken)
				f.meDelay, f.meFail = tc.meDelay, tc.meFail
				ctl := &fakeControl{status: sampleStatus(time.Now())}
				r, err := New(telegramConfig("http://telegram.test", "-100"), ctl, Options{HTTPClient: f.client(), PollTimeout: 30 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				f.send(-100, "alice", "/mute@other_alerts_bot rule=liquidation-near 2h")
				f.send(-100, "alice", "/help")
				ctx, cancel := context.WithCancel(t.Context())
				done := make(chan struct{})
				go func() { defer close(done); r.Run(ctx) }()

				time.Sleep(15 * time.Second)
				synctest.Wait()
				if s := ctl.all(); len(s) != 0 {
					t.Errorf("a command for @other_alerts_bot made a silence: %v", s[0].Matchers)
				}
				if n := len(f.sentTo(-100)); n != 1 {
					t.Errorf("%d replies 15 s after start, want 1 (to /help, not delayed by getMe)", n)
				}

				f.mu.Lock()
				f.meDelay, f.meFail = 0, nil
				f.mu.Unlock()
				time.Sleep(10 * time.Minute)
				f.send(-100, "alice", "/mute@MW_test_bot rule=liquidation-near 2h")
				time.Sleep(10 * time.Second)
				synctest.Wait()
				if n := len(ctl.all()); n != 1 {
					t.Errorf("%d silences after /mute@MW_test_bot, want 1", n)
				}
				cancel()
				<-done
			})
		})
	}
}
