package telegramctl

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/silence"
)

// fakeControl is the daemon's side of the commands, its silences kept in
// a slice and matched by silence.Set as the watcher does.
type fakeControl struct {
	mu       sync.Mutex
	status   []watcher.AccountStatus
	silences []silence.Silence
	next     int
	clock    time.Time // zero: time.Now
}

func (c *fakeControl) now() time.Time {
	if c.clock.IsZero() {
		return time.Now()
	}
	return c.clock
}

func (c *fakeControl) Status(time.Time) []watcher.AccountStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.status)
}

// all returns every silence ever added, expired ones included.
func (c *fakeControl) all() []silence.Silence {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.silences)
}

func (c *fakeControl) Silences() []silence.Silence {
	c.mu.Lock()
	defer c.mu.Unlock()
	return silence.NewSet(slices.Clone(c.silences), nil).List(c.now())
}

func (c *fakeControl) AddSilence(s silence.Silence) (silence.Silence, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s.StartsAt.IsZero() {
		s.StartsAt = c.now()
	}
	if err := s.Validate(); err != nil {
		return silence.Silence{}, err
	}
	c.next++
	s.ID = "s" + strconv.Itoa(c.next)
	s.CreatedAt = c.now()
	c.silences = append(c.silences, s)
	return s, nil
}

func (c *fakeControl) ExpireSilence(id string) (silence.Silence, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	for i := range c.silences {
		if s := &c.silences[i]; s.ID == id && now.Before(s.EndsAt) {
			s.EndsAt = now
			return *s, nil
		}
	}
	return silence.Silence{}, fmt.Errorf("silence %q: %w", id, watcher.ErrNotFound)
}

func (c *fakeControl) Ack(id, author, comment string) (rules.State, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range c.status {
		for j := range c.status[i].Alerts {
			if st := &c.status[i].Alerts[j]; st.ID == id && st.Phase == rules.Active {
				st.Acked, st.AckedBy, st.AckComment = c.now(), author, comment
				return *st, nil
			}
		}
	}
	return rules.State{}, fmt.Errorf("alert %q: %w", id, watcher.ErrNotFound)
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

const testToken = "123456:AAE-secret-part-of-the-token"

func telegramConfig(apiURL string, chats ...string) *config.Config {
	cfg := &config.Config{}
	for i, c := range chats {
		cfg.Notifiers = append(cfg.Notifiers, config.Notifier{
			Name: "phone" + strconv.Itoa(i), Type: "telegram", Token: testToken, ChatID: c,
			APIURL: apiURL, Commands: true, Timeout: 5 * time.Second,
		})
	}
	return cfg
}

// position builds a position's metrics as the engine computes them.
func position(symbol string, side exchanges.Side, liq float64) metrics.Position {
	p := metrics.Position{Symbol: symbol, Side: side, Raw: &exchanges.Position{Symbol: symbol, Side: side, Size: 0.5, MarkPrice: 61800, LiquidationPrice: 58000}}
	p.Metrics.Put(metrics.LiqDistancePct, liq)
	p.Metrics.Put(metrics.Leverage, 20)
	p.Metrics.Put(metrics.UnrealizedPnLPct, -12.3)
	p.Metrics.Put(metrics.HasStopLoss, 0)
	return p
}

// sampleStatus is two accounts: "main" with positions and two alerts (one
// firing, one pending), "sub" blind.
func sampleStatus(now time.Time) []watcher.AccountStatus {
	main := &metrics.Account{Name: "main", Exchange: "binance-usdm", Time: now.Add(-4 * time.Second), Pool: "USDT"}
	main.Metrics.Put(metrics.Equity, 12345.678)
	main.Metrics.Put(metrics.MarginRatio, 0.123)
	main.Positions = []metrics.Position{
		position("ETHUSDT", exchanges.Short, 25),
		position("BTCUSDT", exchanges.Long, 6.21),
		position("SOL<&>USDT", exchanges.Long, -0.5),
	}
	firing := rules.State{Key: rules.Key{Account: "main", Rule: "liquidation-near", Symbol: "BTCUSDT", Side: "long"}, Phase: rules.Active,
		ID: "a1b2c3", Severity: notifiers.Critical, Since: now.Add(-10 * time.Minute), StartsAt: now.Add(-9 * time.Minute),
		Value: 6.21, Threshold: 7, Metric: "liq_distance_pct", Op: "below"}
	pending := rules.State{Key: rules.Key{Account: "main", Rule: "margin-high"}, Phase: rules.Pending, ID: "d4e5f6",
		Severity: notifiers.Warning, Since: now.Add(-time.Minute), Value: 0.123}
	return []watcher.AccountStatus{
		{Name: "main", Exchange: "binance-usdm", Latest: main, LastSuccess: now.Add(-4 * time.Second), Alerts: []rules.State{firing, pending}, Silenced: map[rules.Key]string{}},
		{Name: "sub", Exchange: "binance-coinm", Latest: &metrics.Account{Name: "sub", Stale: true}, LastSuccess: now.Add(-5 * time.Minute)},
	}
}

// start runs a Runner for cfg against ctl until the test ends.
func start(t *testing.T, cfg *config.Config, ctl Control, opts Options) *Runner {
	t.Helper()
	r, err := New(cfg, ctl, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); r.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return r
}

func newLogger(buf *syncBuffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
