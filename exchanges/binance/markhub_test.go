package binance

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// These tests run real websockets on loopback (synctest cannot host
// sockets): every wait has a generous deadline, no sleep is an assertion.
const markWait = 15 * time.Second

type markTickRec struct {
	symbol   string
	mark     float64
	rate     float64
	next     time.Time
	received time.Time
}

// markRec is a recording sink.
type markRec struct {
	name  string
	ticks chan markTickRec
	downs chan error

	mu      sync.Mutex
	nTicks  int
	symbols map[string]int
	losses  int
}

func newMarkRec(name string) *markRec {
	return &markRec{name: name, ticks: make(chan markTickRec, 10000), downs: make(chan error, 100), symbols: map[string]int{}}
}

func (r *markRec) markTick(symbol string, mark, rate float64, next, received time.Time) {
	r.mu.Lock()
	r.nTicks++
	r.symbols[symbol]++
	r.mu.Unlock()
	select {
	case r.ticks <- markTickRec{symbol, mark, rate, next, received}:
	default:
	}
}

func (r *markRec) marksDown(err error) {
	r.mu.Lock()
	if err != nil {
		r.losses++
	}
	r.mu.Unlock()
	r.downs <- err
}

func (r *markRec) count(symbol string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.symbols[symbol]
}

func (r *markRec) lossCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.losses
}

// waitMark waits for a tick of symbol at mark and returns it.
func (r *markRec) waitMark(t *testing.T, symbol string, mark float64) markTickRec {
	t.Helper()
	deadline := time.After(markWait)
	for {
		select {
		case tk := <-r.ticks:
			if tk.symbol == symbol && tk.mark == mark {
				return tk
			}
		case <-deadline:
			t.Fatalf("%s: no tick %s at %v within %s", r.name, symbol, mark, markWait)
		}
	}
}

// waitDown waits for the next marksDown call and checks whether it reports
// a loss.
func (r *markRec) waitDown(t *testing.T, loss bool) error {
	t.Helper()
	select {
	case err := <-r.downs:
		if (err != nil) != loss {
			t.Fatalf("%s: marksDown(%v), want a loss: %v", r.name, err, loss)
		}
		return err
	case <-time.After(markWait):
		t.Fatalf("%s: no marksDown (loss %v) within %s", r.name, loss, markWait)
	}
	return nil
}

// noDown fails if r heard of a loss.
func (r *markRec) noDown(t *testing.T) {
	t.Helper()
	select {
	case err := <-r.downs:
		t.Fatalf("%s: unexpected marksDown(%v)", r.name, err)
	default:
	}
}

// markWaitFor polls cond until it holds.
func markWaitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(markWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, markWait)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuf is a log sink safe for the hub's goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTestMarkHub is a hub on srv's streams with a short debounce; the
// connection-attempt tokens are refilled so that tests do not wait on
// each other's dials.
func newTestMarkHub(t *testing.T, srv *binancetest.Server, kind string) (*markHub, *syncBuf) {
	t.Helper()
	wsPace.Fill()
	logs := &syncBuf{}
	h := newMarkHub(kind, wsBase(srv.URL), false, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	h.debounce = 50 * time.Millisecond
	t.Cleanup(h.Close)
	return h, logs
}

// drainDialTokens empties wsDial's connection-attempt bucket, so that the
// next dial waits about 1.2 s, as under load.
func drainDialTokens() {
	wsPace.Drain()
}

func markSubs(srv *binancetest.Server) string { return strings.Join(srv.MarketSubscriptions(), " ") }

func TestMarkHubRoutesToWatchers(t *testing.T) {
	srv := binancetest.NewServer(t, binancetest.Options{})
	h, _ := newTestMarkHub(t, srv, USDM)
	a, b := newMarkRec("a"), newMarkRec("b")
	h.watch(a, []string{"BTCUSDT"})
	h.watch(b, []string{"ethusdt", "BTCUSDT"})

	// The fixture's numbers until a price is set.
	tk := a.waitMark(t, "BTCUSDT", 11794.15)
	if tk.rate != 0.00038167 || !tk.next.After(time.Now()) || tk.received.IsZero() {
		t.Errorf("first tick %+v: want the fixture's funding rate 0.00038167, a next funding time ahead and a receipt time", tk)
	}
	if got, want := markSubs(srv), "btcusdt@markPrice@1s ethusdt@markPrice@1s"; got != want || srv.MarketConnections() != 1 {
		t.Fatalf("subscriptions %q on %d connections, want %q on one", got, srv.MarketConnections(), want)
	}
	srv.SetMark("BTCUSDT", "50000.5")
	a.waitMark(t, "BTCUSDT", 50000.5)
	b.waitMark(t, "BTCUSDT", 50000.5)
	srv.SetMark("ETHUSDT", "3000.25")
	b.waitMark(t, "ETHUSDT", 3000.25)
	if n := a.count("ETHUSDT"); n != 0 {
		t.Errorf("a got %d ETHUSDT ticks, watches BTCUSDT only", n)
	}
	if up, rc := h.status(); !up || rc != 0 {
		t.Errorf("status = %v, %d; want up, 0 reconnects", up, rc)
	}
	a.noDown(t)
	b.noDown(t)
}

// pushMarks sets symbol's mark to 1000, 1001, … every 20 ms until stop, and
// returns the prices set.
func pushMarks(srv *binancetest.Server, symbol string, stop context.Context) <-chan []float64 {
	out := make(chan []float64, 1)
	go func() {
		var set []float64
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for i := 0; ; i++ {
			p := 1000 + float64(i)
			srv.SetMark(symbol, strconv.FormatFloat(p, 'f', -1, 64))
			set = append(set, p)
			select {
			case <-stop.Done():
				out <- set
				return
			case <-tk.C:
			}
		}
	}()
	return out
}

// checkNoGap checks that r saw every price set (ticks read from r.ticks).
func checkNoGap(t *testing.T, r *markRec, symbol string, set []float64) {
	t.Helper()
	seen := map[float64]bool{}
	r.waitMarkSeen(t, symbol, set[len(set)-1], seen)
	var missing []float64
	for _, p := range set {
		if !seen[p] {
			missing = append(missing, p)
		}
	}
	if len(missing) > 0 {
		t.Fatalf("%s missed %d of %d prices of %s: %v", r.name, len(missing), len(set), symbol, missing)
	}
}

func (r *markRec) waitMarkSeen(t *testing.T, symbol string, last float64, seen map[float64]bool) {
	t.Helper()
	deadline := time.After(markWait)
	for {
		select {
		case tk := <-r.ticks:
			if tk.symbol == symbol {
				seen[tk.mark] = true
				if tk.mark == last {
					return
				}
			}
		case <-deadline:
			t.Fatalf("%s: no tick %s at %v within %s", r.name, symbol, last, markWait)
		}
	}
}

func TestMarkHubResubscribeWithoutGap(t *testing.T) {
	srv := binancetest.NewServer(t, binancetest.Options{})
	h, _ := newTestMarkHub(t, srv, USDM)
	a, b := newMarkRec("a"), newMarkRec("b")
	h.watch(a, []string{"BTCUSDT"})
	a.waitMark(t, "BTCUSDT", 11794.15)
	attempts := srv.MarketAttempts()

	stop, stopPush := context.WithCancel(context.Background())
	prices := pushMarks(srv, "BTCUSDT", stop)
	drainDialTokens() // the new connection waits ~1 s for its turn
	h.watch(b, []string{"ETHUSDT"})
	b.waitMark(t, "ETHUSDT", 11794.15)
	markWaitFor(t, "the old connection closed", func() bool {
		return srv.MarketConnections() == 1 && markSubs(srv) == "btcusdt@markPrice@1s ethusdt@markPrice@1s"
	})
	time.Sleep(100 * time.Millisecond) // a few more prices on the new connection alone
	stopPush()
	checkNoGap(t, a, "BTCUSDT", <-prices)
	a.noDown(t)
	if got := srv.MarketAttempts() - attempts; got != 1 {
		t.Errorf("%d connection attempts for the resubscription, want 1", got)
	}
	if _, rc := h.status(); rc != 1 {
		t.Errorf("reconnects = %d, want 1 (the resubscription)", rc)
	}

	// Dropping b's symbol goes back to BTCUSDT alone; forgetting a too
	// closes the connection.
	h.forget(b)
	markWaitFor(t, "ETHUSDT unsubscribed", func() bool { return markSubs(srv) == "btcusdt@markPrice@1s" })
	h.watch(a, nil)
	markWaitFor(t, "the last connection closed", func() bool { return srv.MarketConnections() == 0 })
	if up, _ := h.status(); !up {
		t.Error("status down with nothing watched")
	}
}

func TestMarkHubReconnectsAfterDrop(t *testing.T) {
	srv := binancetest.NewServer(t, binancetest.Options{})
	h, logs := newTestMarkHub(t, srv, USDM)
	a, b := newMarkRec("a"), newMarkRec("b")
	h.watch(a, []string{"BTCUSDT"})
	h.watch(b, []string{"BTCUSDT", "ETHUSDT"})
	a.waitMark(t, "BTCUSDT", 11794.15)

	srv.DropMarketStreams()
	for _, r := range []*markRec{a, b} {
		err := r.waitDown(t, true)
		if !strings.Contains(err.Error(), "mark-price stream") || !strings.Contains(err.Error(), "127.0.0.1") {
			t.Errorf("loss error %q should name the stream and its host", err)
		}
		r.waitDown(t, false)
	}
	srv.SetMark("BTCUSDT", "42000")
	a.waitMark(t, "BTCUSDT", 42000)
	if a.lossCount() != 1 || b.lossCount() != 1 {
		t.Errorf("losses a=%d b=%d, want one each", a.lossCount(), b.lossCount())
	}
	if up, rc := h.status(); !up || rc != 1 {
		t.Errorf("status = %v, %d; want up after 1 reconnect", up, rc)
	}
	if !strings.Contains(logs.String(), "mark-price stream lost") || !strings.Contains(logs.String(), "mark-price stream back") {
		t.Errorf("logs should say lost and back:\n%s", logs)
	}
}

func TestMarkHubBacksOffWhileServerDead(t *testing.T) {
	srv := binancetest.NewServer(t, binancetest.Options{})
	h, _ := newTestMarkHub(t, srv, USDM)
	h.backoffMin, h.backoffMax = 100*time.Millisecond, 400*time.Millisecond
	a := newMarkRec("a")
	h.watch(a, []string{"BTCUSDT"})
	a.waitMark(t, "BTCUSDT", 11794.15)

	srv.StopMarket()
	a.waitDown(t, true)
	before := srv.MarketAttempts()
	// Over the 2 s in which attempts are counted, wsDial's own pacing is
	// kept out of the way: the count is the backoff's alone.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		wsPace.Fill()
		time.Sleep(10 * time.Millisecond)
	}
	tries := srv.MarketAttempts() - before
	// Waits of 50-100, 100-200, then 200-400 ms: about 8 tries in 2 s at
	// most; a hot loop makes thousands.
	if tries < 2 || tries > 12 {
		t.Errorf("%d connection attempts in 2 s against a dead server, want backoff (2..12)", tries)
	}
	if up, _ := h.status(); up {
		t.Error("status up while the server is dead")
	}
	a.noDown(t) // one loss, not one per attempt
	srv.StartMarket()
	a.waitDown(t, false)
	srv.SetMark("BTCUSDT", "43000")
	a.waitMark(t, "BTCUSDT", 43000)
}

func TestMarkHubSilenceReconnects(t *testing.T) {
	srv := binancetest.NewServer(t, binancetest.Options{})
	h, _ := newTestMarkHub(t, srv, USDM)
	h.silence = 2500 * time.Millisecond // the fake ticks every second
	a := newMarkRec("a")
	h.watch(a, []string{"BTCUSDT"})
	a.waitMark(t, "BTCUSDT", 11794.15)
	attempts := srv.MarketAttempts()

	srv.MuteMarket(true)
	err := a.waitDown(t, true)
	if !errors.Is(err, errSilent) {
		t.Errorf("loss %v, want silence", err)
	}
	markWaitFor(t, "a reconnection attempt", func() bool { return srv.MarketAttempts() > attempts })
	srv.MuteMarket(false)
	a.waitDown(t, false)
	srv.SetMark("BTCUSDT", "44000")
	a.waitMark(t, "BTCUSDT", 44000)
}

func TestMarkHubKeepsConnectionOnBadFrames(t *testing.T) {
	srv := binancetest.NewServer(t, binancetest.Options{})
	h, logs := newTestMarkHub(t, srv, USDM)
	a := newMarkRec("a")
	h.watch(a, []string{"BTCUSDT"})
	a.waitMark(t, "BTCUSDT", 11794.15)
	attempts := srv.MarketAttempts()

	for _, raw := range []string{
		`{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpd`, // cut off
		`not json`,
		`{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"abc","r":"0","T":0}}`,
		`{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":2,"s":"BTCUSDT","p":"-5","r":"0","T":0}}`,
		`{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","s":"BTCUSDT"}}`, // unknown event: no price
		`{"result":null,"id":1}`,
	} {
		srv.PushMarketRaw(raw)
	}
	srv.SetMark("BTCUSDT", "45000")
	a.waitMark(t, "BTCUSDT", 45000)
	if got := srv.MarketAttempts(); got != attempts {
		t.Errorf("%d connection attempts after bad frames, want the connection kept", got-attempts)
	}
	a.noDown(t)
	if n := strings.Count(logs.String(), "frame skipped"); n != 1 {
		t.Errorf("%d log lines about skipped frames, want 1 (rate-limited):\n%s", n, logs)
	}
}

func TestMarkHubCOINM(t *testing.T) {
	srv := binancetest.NewServer(t, binancetest.Options{Account: binancetest.COINM})
	h, _ := newTestMarkHub(t, srv, COINM)
	if h.period != 3*time.Second || h.silence != 15*time.Second {
		t.Errorf("COIN-M period %s, silence %s; want 3s, 15s", h.period, h.silence)
	}
	a, b := newMarkRec("a"), newMarkRec("b")
	h.watch(a, []string{"BTCUSD_PERP", "ETHUSD_PERP"})
	h.watch(b, []string{"ETHUSD_PERP"})
	a.waitMark(t, "BTCUSD_PERP", 11794.15)
	markWaitFor(t, "one raw stream per symbol", func() bool {
		return srv.MarketConnections() == 2 && markSubs(srv) == "btcusd_perp@markPrice ethusd_perp@markPrice"
	})
	srv.SetMark("ETHUSD_PERP", "2500.5")
	a.waitMark(t, "ETHUSD_PERP", 2500.5)
	b.waitMark(t, "ETHUSD_PERP", 2500.5)

	h.watch(a, []string{"BTCUSD_PERP"})
	h.forget(b)
	markWaitFor(t, "ETHUSD_PERP closed", func() bool { return markSubs(srv) == "btcusd_perp@markPrice" })

	srv.DropMarketStreams()
	a.waitDown(t, true)
	a.waitDown(t, false)
	srv.SetMark("BTCUSD_PERP", "61000")
	a.waitMark(t, "BTCUSD_PERP", 61000)
}

func TestMarkHubRotatesWithoutGap(t *testing.T) {
	srv := binancetest.NewServer(t, binancetest.Options{})
	h, _ := newTestMarkHub(t, srv, USDM)
	h.rotate = 700 * time.Millisecond // Binance: 24 h
	a := newMarkRec("a")
	h.watch(a, []string{"BTCUSDT"})
	a.waitMark(t, "BTCUSDT", 11794.15)

	stop, stopPush := context.WithCancel(context.Background())
	prices := pushMarks(srv, "BTCUSDT", stop)
	markWaitFor(t, "two rotations", func() bool { _, rc := h.status(); return rc >= 2 })
	stopPush()
	checkNoGap(t, a, "BTCUSDT", <-prices)
	a.noDown(t)
	if n := srv.MarketConnections(); n > 2 {
		t.Errorf("%d connections open, want the old ones closed", n)
	}
}

func TestMarkHubSplitsConnections(t *testing.T) {
	srv := binancetest.NewServer(t, binancetest.Options{})
	h, _ := newTestMarkHub(t, srv, USDM)
	h.perConn = 3
	a := newMarkRec("a")
	syms := []string{"AUSDT", "BUSDT", "CUSDT", "DUSDT", "EUSDT", "FUSDT", "GUSDT"}
	h.watch(a, syms)
	markWaitFor(t, "three connections", func() bool {
		return srv.MarketConnections() == 3 && len(srv.MarketSubscriptions()) == len(syms)
	})
	want := make([]string, len(syms))
	for i, s := range syms {
		want[i] = strings.ToLower(s) + "@markPrice@1s"
	}
	if got := srv.MarketSubscriptions(); !slices.Equal(got, want) {
		t.Errorf("subscriptions %v, want each symbol once: %v", got, want)
	}
	// One more symbol fits no kept connection's room but for the one of 1.
	h.watch(a, append(syms, "HUSDT"))
	markWaitFor(t, "HUSDT added", func() bool {
		return srv.MarketConnections() == 3 && len(srv.MarketSubscriptions()) == len(syms)+1
	})
}

func TestMarkHubRegistry(t *testing.T) {
	t.Cleanup(resetMarkHubs)
	a := marksFor(USDM, "http://127.0.0.1:1/", false, nil)
	if b := marksFor(USDM, "ws://127.0.0.1:1", false, nil); b != a {
		t.Error("equal endpoints got two hubs")
	}
	for _, k := range []struct {
		kind, base string
		testnet    bool
	}{{COINM, "ws://127.0.0.1:1", false}, {USDM, "", false}, {USDM, "", true}} {
		if marksFor(k.kind, k.base, k.testnet, nil) == a {
			t.Errorf("%+v shares the hub of %s ws://127.0.0.1:1", k, USDM)
		}
	}
	if h := marksFor(USDM, "", true, nil); h.where != "stream.binancefuture.com" {
		t.Errorf("testnet hub at %q", h.where)
	}
	a.Close()
	if marksFor(USDM, "ws://127.0.0.1:1", false, nil) == a {
		t.Error("a closed hub stayed registered")
	}
}

// countSink counts without allocating.
type countSink struct {
	n    atomic.Int64
	last atomic.Uint64
}

func (c *countSink) markTick(_ string, mark, _ float64, _, _ time.Time) {
	c.n.Add(1)
	c.last.Store(uint64(mark))
}
func (c *countSink) marksDown(error) {}

// routeHub is a hub whose routing table holds sinks, with no connection.
func routeHub(sinks int, symbol string) (*markHub, []*countSink) {
	h := newMarkHub(USDM, "ws://127.0.0.1:1", false, nil)
	cs := make([]*countSink, sinks)
	h.mu.Lock()
	for i := range cs {
		cs[i] = &countSink{}
		h.sinks[cs[i]] = &markWatch{symbols: []string{symbol, fmt.Sprint("OTHER", i)}}
	}
	h.rebuildLocked()
	h.mu.Unlock()
	return h, cs
}

func TestMarkRoute(t *testing.T) {
	h, cs := routeHub(3, "BTCUSDT")
	now := time.Now()
	h.route("BTCUSDT", "100.5", "0.0001", 10, 0, now)
	h.route("BTCUSDT", "99", "0.0001", 9, 0, now) // older: dropped
	h.route("BTCUSDT", "101", "", 10, 0, now)     // same event time, no funding: kept
	h.route("ETHUSDT", "5", "0", 11, 0, now)      // not watched
	h.route("BTCUSDT", "NaN", "0", 12, 0, now)
	h.route("BTCUSDT", "1", "x", 12, 0, now)
	for i, c := range cs {
		if c.n.Load() != 2 || c.last.Load() != 101 {
			t.Errorf("sink %d: %d ticks, last %d; want 2, last 101", i, c.n.Load(), c.last.Load())
		}
	}
	allocs := testing.AllocsPerRun(1000, func() {
		now = now.Add(time.Millisecond)
		h.route("BTCUSDT", "11794.15000000", "0.00038167", now.UnixMilli(), 1562306400000, now)
	})
	if allocs != 0 {
		t.Errorf("route allocates %v times per tick, want 0", allocs)
	}
}

// BenchmarkMarkRoute: one tick of a symbol held by 1 or 100 accounts.
func BenchmarkMarkRoute(b *testing.B) {
	for _, n := range []int{1, 100} {
		b.Run(fmt.Sprint(n, "sinks"), func(b *testing.B) {
			h, _ := routeHub(n, "BTCUSDT")
			now := time.Now()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				h.route("BTCUSDT", "11794.15000000", "0.00038167", int64(i), 1562306400000, now)
			}
		})
	}
}
