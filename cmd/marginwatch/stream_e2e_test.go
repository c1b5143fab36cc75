package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// End-to-end tests of real-time mode (stream: true): the real binary
// against the fake Binance, whose one 127.0.0.1 server serves the REST
// API, the user-data streams and the mark-price streams. Notices are
// taken at a webhook receiver; the daemon's log (stderr) is read for the
// stream's state changes.

// syncLog collects the daemon's log; safe to read while it is written.
type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// count is the number of log lines holding every part.
func (l *syncLog) count(parts ...string) int {
	return count(strings.Split(l.String(), "\n"), parts...)
}

// startLoggedDaemon is startDaemon with the log kept where a test can
// wait on it; stdout and the log are printed when the test fails.
func startLoggedDaemon(t *testing.T, cfg string) (*daemon, *syncLog) {
	t.Helper()
	bin, err := buildBinary()
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncLog{}
	d := &daemon{cmd: exec.Command(bin, "run", "-config", cfg), lines: make(chan string, 1000), done: make(chan struct{})}
	d.cmd.Stderr = logs
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			d.mu.Lock()
			d.seen = append(d.seen, sc.Text())
			d.mu.Unlock()
			select {
			case d.lines <- sc.Text():
			default: // nobody waits on stdout here; never block the daemon
			}
		}
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		_ = d.cmd.Wait()
		if t.Failed() {
			t.Logf("daemon stdout:\n%s\ndaemon log:\n%s", strings.Join(d.output(), "\n"), logs.String())
		}
	})
	return d, logs
}

// waitLog waits until the log holds n lines with every part and returns
// how long that took.
func waitLog(t *testing.T, logs *syncLog, timeout time.Duration, n int, parts ...string) time.Duration {
	t.Helper()
	start := time.Now()
	waitUntil(t, timeout, fmt.Sprintf("%d log lines with %q", n, parts), func() bool { return logs.count(parts...) >= n })
	return time.Since(start)
}

// waitStreaming waits until the daemon says it streams and the fake
// serves the mark-price stream named (e.g. "ethusdt@markPrice@1s"): the
// mark-price hub subscribes a moment after the account's first read
// (subscription changes coalesce for 500 ms).
func waitStreaming(t *testing.T, fake *binancetest.Server, logs *syncLog, stream string) {
	t.Helper()
	waitLog(t, logs, 60*time.Second, 1, "streaming: evaluating every change")
	waitUntil(t, 10*time.Second, "the subscription to "+stream, func() bool {
		return slices.Contains(fake.MarketSubscriptions(), stream) && fake.UserConnections() > 0
	})
}

// streamedAccount is the config of one streamed account on fake.
type streamedAccount struct {
	exchange  string // binance-usdm or binance-coinm
	poll      string // poll_interval: the fallback while the streams are down
	reconcile string // reconcile_interval
}

// streamConfig writes a config with one streamed account on fake, the
// console and a webhook to hook, the given rules (YAML list items) and
// listen (the admin address, "" for none).
func streamConfig(t *testing.T, fake *binancetest.Server, hook *receiver, a streamedAccount, listen, rules string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "config.yaml")
	text := fmt.Sprintf(`state_dir: state
listen: %q
accounts:
  - name: main
    exchange: %s
    endpoint: %s
    stream_endpoint: %s
    api_key: %s
    api_secret: %s
    stream: true
    poll_interval: %s
    reconcile_interval: %s
notifiers:
  - {name: term, type: console}
  - {name: hook, type: webhook, url: %q, secret: whsec_c2VjcmV0LXNlY3JldC1zZWNyZXQ=, timeout: 2s}
rules:
%s`, listen, a.exchange, fake.URL, "ws://"+strings.TrimPrefix(fake.URL, "http://"), binancetest.Key, binancetest.Secret,
		a.poll, a.reconcile, hook.srv.URL, rules)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// liqRule is a liq_distance_pct rule on one symbol.
func liqRule(name, symbol string, warning, critical float64) string {
	return fmt.Sprintf("  - name: %s\n    metric: liq_distance_pct\n    symbols: [%s]\n    below: {warning: %g, critical: %g}\n", name, symbol, warning, critical)
}

// riskPath is the positionRisk path the fake serves for its account.
func riskPath(fake *binancetest.Server) string {
	if fake.Body("/dapi/v1/positionRisk") != "" {
		return "/dapi/v1/positionRisk"
	}
	return "/fapi/v3/positionRisk"
}

// riskRows decodes the fake's positionRisk body, numbers as written.
func riskRows(t *testing.T, fake *binancetest.Server) []map[string]any {
	t.Helper()
	d := json.NewDecoder(strings.NewReader(fake.Body(riskPath(fake))))
	d.UseNumber()
	var rows []map[string]any
	if err := d.Decode(&rows); err != nil {
		t.Fatalf("positionRisk body: %v", err)
	}
	return rows
}

func numberOf(t *testing.T, row map[string]any, field string) float64 {
	t.Helper()
	var s string
	switch v := row[field].(type) {
	case json.Number:
		s = v.String()
	case string:
		s = v
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("positionRisk %v: %s = %v: %v", row["symbol"], field, row[field], err)
	}
	return f
}

// heldPosition is a held position of the fake's account as its
// positionRisk reports it.
type heldPosition struct {
	mark, liq, amount float64
}

func positionOf(t *testing.T, fake *binancetest.Server, symbol string) heldPosition {
	t.Helper()
	for _, r := range riskRows(t, fake) {
		if r["symbol"] == symbol && numberOf(t, r, "positionAmt") != 0 {
			return heldPosition{mark: numberOf(t, r, "markPrice"), liq: numberOf(t, r, "liquidationPrice"), amount: numberOf(t, r, "positionAmt")}
		}
	}
	t.Fatalf("the fake holds no %s position", symbol)
	return heldPosition{}
}

// markAt is the mark at which p is dist percent from its liquidation
// price (|mark − liq| / mark × 100, on the safe side).
func (p heldPosition) markAt(dist float64) float64 {
	if p.amount < 0 { // a short is liquidated above the mark
		return p.liq / (1 + dist/100)
	}
	return p.liq / (1 - dist/100)
}

func (p heldPosition) distance() float64 { return math.Abs(p.mark-p.liq) / p.mark * 100 }

// moveMark moves symbol's mark price on the exchange: the mark-price
// stream pushes it at once, and positionRisk reports it from now on (its
// mark, and on USDⓈ-M its notional, unrealized PnL and isolated margin),
// as Binance's REST API and streams agree. REST is updated first, so that
// a Snapshot taken after the tick never reads the old mark.
func moveMark(t *testing.T, fake *binancetest.Server, symbol string, price float64) {
	t.Helper()
	rows := riskRows(t, fake)
	p := strconv.FormatFloat(price, 'f', 8, 64)
	usdm := riskPath(fake) == "/fapi/v3/positionRisk"
	for _, r := range rows {
		if r["symbol"] != symbol {
			continue
		}
		r["markPrice"] = p
		if usdm {
			amt, entry := numberOf(t, r, "positionAmt"), numberOf(t, r, "entryPrice")
			up := amt * (price - entry)
			r["unRealizedProfit"] = strconv.FormatFloat(up, 'f', 8, 64)
			r["notional"] = strconv.FormatFloat(amt*price, 'f', 8, 64)
			if iw := numberOf(t, r, "isolatedWallet"); iw != 0 {
				r["isolatedMargin"] = strconv.FormatFloat(iw+up, 'f', 8, 64)
			}
		}
	}
	b, err := json.Marshal(rows)
	if err != nil {
		t.Fatal(err)
	}
	fake.SetBody(riskPath(fake), string(b))
	fake.SetMark(symbol, p)
}

// newStreamFake is a fake Binance whose mark-price streams start at the
// marks its positionRisk reports (the stream would otherwise serve the
// shared fixture's price for every symbol).
func newStreamFake(t *testing.T, account binancetest.Account) *binancetest.Server {
	t.Helper()
	fake := binancetest.NewServer(t, binancetest.Options{Account: account})
	for _, r := range riskRows(t, fake) {
		if numberOf(t, r, "positionAmt") != 0 {
			fake.SetMark(r["symbol"].(string), strconv.FormatFloat(numberOf(t, r, "markPrice"), 'f', -1, 64))
		}
	}
	return fake
}

// notices are the alerts the receiver accepted for rule (and symbol,
// unless empty), in order.
func notices(hook *receiver, rule, symbol string) []webhookAlert {
	_, got := hook.snapshot()
	var out []webhookAlert
	for _, a := range got {
		if a.Rule == rule && (symbol == "" || a.Symbol == symbol) {
			out = append(out, a)
		}
	}
	return out
}

// describe renders notices as "kind/severity" (closed: "closed/reason").
func describe(as []webhookAlert) string {
	var parts []string
	for _, a := range as {
		switch a.Kind {
		case "closed":
			parts = append(parts, a.Kind+"/"+a.Reason)
		case "resolved":
			parts = append(parts, a.Kind)
		default:
			parts = append(parts, a.Kind+"/"+a.Severity)
		}
	}
	return strings.Join(parts, " ")
}

// waitNotice waits until rule's notices for symbol read want (describe's
// form) and returns when it saw them (checked every 5 ms).
func waitNotice(t *testing.T, hook *receiver, timeout time.Duration, rule, symbol, want string) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if got := describe(notices(hook, rule, symbol)); got == want {
			return time.Now()
		} else if time.Now().After(deadline) {
			t.Fatalf("%s %s notices after %s: %q, want %q", rule, symbol, timeout, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// metricValue reads one series (name and labels, as exposed) from
// /metrics; ok is false when it is absent.
func metricValue(t *testing.T, addr, series string) (v float64, ok bool) {
	t.Helper()
	code, body, err := get("http://" + addr + "/metrics")
	if err != nil || code != 200 {
		return 0, false
	}
	for _, l := range strings.Split(body, "\n") {
		if rest, found := strings.CutPrefix(l, series+" "); found {
			v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return v, err == nil
		}
	}
	return 0, false
}

// realTime is the deadline for a streamed change to reach the webhook. It
// is generous for a loaded test machine (the mark-price stream ticks
// every second, a loopback evaluation takes milliseconds) and far below
// the 15 s poll_interval of the accounts that use it, so that only the
// stream can meet it.
const realTime = 10 * time.Second

// TestStreamAlertsInRealTime: a streamed USDⓈ-M account polled every 15 s
// and reconciled every 5 minutes, so polling cannot be what alerts. The
// ETHUSDT short's mark, moved on the exchange towards its liquidation
// price, raises the warning, then the critical, each once; moved back, it
// resolves; each notice reaches the webhook well within one poll interval.
func TestStreamAlertsInRealTime(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	fake := newStreamFake(t, binancetest.USDMOneWay)
	hook := newReceiver(t)
	eth := positionOf(t, fake, "ETHUSDT")
	const warning, critical = 10.0, 5.0
	if d := eth.distance(); d <= warning+1 {
		t.Fatalf("the fixture's ETHUSDT short is %.2f%% from liquidation: the test needs it calm", d)
	}
	cfg := streamConfig(t, fake, hook, streamedAccount{"binance-usdm", "15s", "5m"}, "", liqRule("liquidation-near", "ETHUSDT", warning, critical))
	_, logs := startLoggedDaemon(t, cfg)
	waitStreaming(t, fake, logs, "ethusdt@markPrice@1s")
	polls := fake.Count("/fapi/v3/positionRisk")

	steps := []struct {
		dist float64
		want string
	}{
		{7.5, "firing/warning"},
		{2.5, "firing/warning escalated/critical"},
		{eth.distance(), "firing/warning escalated/critical resolved"},
	}
	for _, s := range steps {
		moved := time.Now()
		moveMark(t, fake, "ETHUSDT", eth.markAt(s.dist))
		took := waitNotice(t, hook, realTime, "liquidation-near", "ETHUSDT", s.want).Sub(moved)
		t.Logf("mark at %.1f%% from liquidation: %s at the webhook %s after the tick", s.dist, s.want[strings.LastIndex(s.want, " ")+1:], took.Round(time.Millisecond))
	}
	if n := fake.Count("/fapi/v3/positionRisk") - polls; n > 0 {
		t.Errorf("%d positionRisk reads while streaming: the alerts must come from the streams", n)
	}
	time.Sleep(2 * time.Second) // a few more ticks: nothing more may arrive
	if got := describe(notices(hook, "liquidation-near", "")); got != "firing/warning escalated/critical resolved" {
		t.Errorf("notices %q, want each once", got)
	}
}

// TestStreamOutageMidIncident kills the exchange's websocket servers (the
// mark-price and the user-data streams: open connections dropped,
// reconnections refused) while liquidation-near fires critical. Polling
// must take over within one poll interval (2 s here) with an info log, not
// an alert: /metrics says the stream is down, and nothing is sent — no
// data-stale, no resolution, no repeated firing. A price change the
// exchange's REST API reports meanwhile is picked up by the polls (the
// alert eases to warning). When the servers return, streaming resumes by
// itself (log, stream_up 1, the reconnect counted) and a tick alerts in
// real time again. Every notice of the incident arrives once, in order.
func TestStreamOutageMidIncident(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	const poll = 2 * time.Second
	fake := newStreamFake(t, binancetest.USDMOneWay)
	hook := newReceiver(t)
	addr := freeAddr(t)
	eth := positionOf(t, fake, "ETHUSDT")
	cfg := streamConfig(t, fake, hook, streamedAccount{"binance-usdm", poll.String(), "5m"}, addr, liqRule("liquidation-near", "ETHUSDT", 10, 5))
	_, logs := startLoggedDaemon(t, cfg)
	waitStreaming(t, fake, logs, "ethusdt@markPrice@1s")
	const up = `marginwatch_stream_up{account="main"}`
	const reconnects = `marginwatch_stream_reconnects_total{account="main"}`
	waitUntil(t, 10*time.Second, "stream_up 1", func() bool { v, ok := metricValue(t, addr, up); return ok && v == 1 })
	before, _ := metricValue(t, addr, reconnects)

	moveMark(t, fake, "ETHUSDT", eth.markAt(7.5))
	waitNotice(t, hook, realTime, "liquidation-near", "ETHUSDT", "firing/warning")
	moveMark(t, fake, "ETHUSDT", eth.markAt(2.5))
	waitNotice(t, hook, realTime, "liquidation-near", "ETHUSDT", "firing/warning escalated/critical")

	// The websocket servers die.
	polls := fake.Count("/fapi/v3/positionRisk")
	killed := time.Now()
	fake.StopMarket()
	fake.StopUserStreams()
	waitLog(t, logs, 10*time.Second, 1, "stream interrupted; polling until it is back")
	waitUntil(t, 10*time.Second, "a poll", func() bool { return fake.Count("/fapi/v3/positionRisk") > polls })
	fallback := time.Since(killed)
	t.Logf("first poll %s after the streams died (poll_interval %s)", fallback.Round(time.Millisecond), poll)
	if fallback > poll+2*time.Second { // one poll interval, and slack for a loaded machine
		t.Errorf("the first poll came %s after the streams died, want within one poll interval (%s)", fallback, poll)
	}
	waitUntil(t, 10*time.Second, "stream_up 0", func() bool { v, ok := metricValue(t, addr, up); return ok && v == 0 })
	// Several polls at the same price: nothing to say.
	waitUntil(t, 5*poll, "three polls", func() bool { return fake.Count("/fapi/v3/positionRisk") >= polls+3 })
	if got := describe(notices(hook, "liquidation-near", "ETHUSDT")); got != "firing/warning escalated/critical" {
		t.Errorf("notices while polling at an unchanged price: %q, want none new", got)
	}
	// The exchange's REST API reports a new price: the polls see it.
	changed := time.Now()
	moveMark(t, fake, "ETHUSDT", eth.markAt(7.5))
	eased := waitNotice(t, hook, 3*poll+5*time.Second, "liquidation-near", "ETHUSDT", "firing/warning escalated/critical eased/warning").Sub(changed)
	t.Logf("a REST-only price change eased the alert %s later", eased.Round(time.Millisecond))
	if fake.MarketConnections() != 0 || fake.UserConnections() != 0 {
		t.Fatalf("%d market and %d user connections while the servers are down", fake.MarketConnections(), fake.UserConnections())
	}

	// The servers return: streaming resumes by itself.
	fake.StartMarket()
	fake.StartUserStreams()
	back := waitLog(t, logs, 90*time.Second, 2, "streaming: evaluating every change")
	t.Logf("streaming again %s after the servers returned", back.Round(time.Millisecond))
	waitUntil(t, 10*time.Second, "stream_up 1 again", func() bool { v, ok := metricValue(t, addr, up); return ok && v == 1 })
	if after, _ := metricValue(t, addr, reconnects); after <= before {
		t.Errorf("%s = %v after the outage, want more than %v", reconnects, after, before)
	}
	polls = fake.Count("/fapi/v3/positionRisk")
	moved := time.Now()
	moveMark(t, fake, "ETHUSDT", eth.markAt(2.5))
	took := waitNotice(t, hook, realTime, "liquidation-near", "ETHUSDT", "firing/warning escalated/critical eased/warning escalated/critical").Sub(moved)
	t.Logf("escalated by a tick %s after it, streaming again", took.Round(time.Millisecond))
	moveMark(t, fake, "ETHUSDT", eth.mark)
	waitNotice(t, hook, realTime, "liquidation-near", "ETHUSDT", "firing/warning escalated/critical eased/warning escalated/critical resolved")
	if n := fake.Count("/fapi/v3/positionRisk") - polls; n > 1 {
		t.Errorf("%d positionRisk reads after streaming resumed: still polling", n)
	}
	if n, _ := metricValue(t, addr, "marginwatch_stream_tick_to_evaluation_seconds_count"); n == 0 {
		t.Errorf("no tick-to-evaluation latency recorded in /metrics")
	}

	time.Sleep(2 * time.Second) // nothing more may arrive
	_, all := hook.snapshot()
	if got := describe(all); got != "firing/warning escalated/critical eased/warning escalated/critical resolved" {
		t.Errorf("every notice: %q, want the incident's five, each once", got)
	}
	for _, a := range all {
		if a.Rule == "data-stale" {
			t.Errorf("data-stale was sent (%s): polling kept the data fresh", a.Kind)
		}
	}
	if n := logs.count("level=INFO", "stream interrupted"); n != 1 || logs.count("stream interrupted") != 1 {
		t.Errorf("%d 'stream interrupted' info lines (%d in all), want 1", n, logs.count("stream interrupted"))
	}
	if n := logs.count("level=INFO", "streaming: evaluating every change"); n != 2 {
		t.Errorf("%d 'streaming' info lines, want 2 (start and return)", n)
	}
	// Each attribute once: a log line with two account keys is ambiguous
	// JSON (-log-format json) and noise in text.
	for _, l := range strings.Split(logs.String(), "\n") {
		if strings.Count(l, " account=") > 1 {
			t.Errorf("a log line names the account twice: %s", l)
		}
	}
}

// TestStreamLiquidationWhileFiringCritical: the ETHUSDT short is 14.8%
// from liquidation, critical for the rule below, when Binance liquidates
// it and pushes the forced order's fill (ORDER_TRADE_UPDATE, LIQUIDATION,
// CALCULATED) and the ACCOUNT_UPDATE that sets the position to 0, in
// either order; positionRisk and forceOrders say the same from then on.
// The user hears exactly one liquidation event, at once, and one closing
// notice with reason liquidated: never a resolution, never "closed".
func TestStreamLiquidationWhileFiringCritical(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	for _, tc := range []struct {
		name       string
		fillFirst  bool
		wantWithin time.Duration
	}{
		{"fill then account update", true, 2 * time.Second},
		{"account update then fill", false, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			fake := newStreamFake(t, binancetest.USDMOneWay)
			hook := newReceiver(t)
			rules := liqRule("liquidation-near", "ETHUSDT", 20, 15) +
				"  - {name: liquidated, scope: event, event: liquidation, severity: critical}\n"
			cfg := streamConfig(t, fake, hook, streamedAccount{"binance-usdm", "15s", "5m"}, "", rules)
			d, logs := startLoggedDaemon(t, cfg)
			waitStreaming(t, fake, logs, "ethusdt@markPrice@1s")
			waitNotice(t, hook, realTime, "liquidation-near", "ETHUSDT", "firing/critical")

			// Binance liquidates the short: the forced order closes it and
			// the isolated wallet (6000) is gone.
			fill, _, err := fake.LiquidationFill("ETHUSDT", "BOTH")
			if err != nil {
				t.Fatal(err)
			}
			update := fake.AccountUpdate("ORDER",
				[]binancetest.Balance{{Asset: "USDT", Wallet: "44000.00000000", CrossWallet: "44000.00000000", Change: "0"}},
				[]binancetest.PositionUpdate{{Symbol: "ETHUSDT", PositionSide: "BOTH", Amount: "0", Entry: "0.0", UnrealizedPnL: "0", MarginType: "isolated", IsolatedWallet: "0"}})
			frames := []string{fill, update}
			if !tc.fillFirst {
				frames = []string{update, fill}
			}
			pushed := time.Now()
			for _, f := range frames {
				fake.PushUser(f)
			}
			event := waitNotice(t, hook, realTime, "liquidated", "", "event/critical").Sub(pushed)
			t.Logf("liquidation event at the webhook %s after the push", event.Round(time.Millisecond))
			if event > tc.wantWithin {
				t.Logf("NOTE: slower than the issue's %s (a loaded machine?)", tc.wantWithin)
			}
			closed := waitNotice(t, hook, realTime, "liquidation-near", "ETHUSDT", "firing/critical closed/liquidated").Sub(pushed)
			t.Logf("closing notice %s after the push", closed.Round(time.Millisecond))

			time.Sleep(3 * time.Second) // ticks, and the REST check: nothing more may arrive
			if got := describe(notices(hook, "liquidation-near", "")); got != "firing/critical closed/liquidated" {
				t.Errorf("liquidation-near notices %q, want the firing and one closing notice with reason liquidated", got)
			}
			if got := describe(notices(hook, "liquidated", "")); got != "event/critical" {
				t.Errorf("liquidation events %q, want one", got)
			}
			if ev := notices(hook, "liquidated", ""); len(ev) == 1 && ev[0].Symbol != "ETHUSDT" {
				t.Errorf("the liquidation event names %q, want ETHUSDT", ev[0].Symbol)
			}
			d.waitFor(t, 10*time.Second, "LIQUIDATED", "ETHUSDT")
		})
	}
}

// TestStreamMarginCall: Binance's MARGIN_CALL push raises one margin_call
// event through an event rule, and `marginwatch check` does not warn that
// the rule can never fire, since the account streams (it does when the
// same account is polled).
func TestStreamMarginCall(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	fake := newStreamFake(t, binancetest.USDMOneWay)
	hook := newReceiver(t)
	cfg := streamConfig(t, fake, hook, streamedAccount{"binance-usdm", "15s", "5m"}, "",
		"  - {name: margin-call, scope: event, event: margin_call, severity: critical}\n")

	code, out, errOut := runCLI("check", "-config", cfg)
	if code != exitOK {
		t.Fatalf("check: exit %d: %s%s", code, out, errOut)
	}
	if strings.Contains(out+errOut, "margin_call") {
		t.Errorf("check warns about margin_call on a streamed account:\n%s%s", out, errOut)
	}
	polled := filepath.Join(t.TempDir(), "polled.yaml")
	if err := os.WriteFile(polled, []byte(strings.Replace(readFile(t, cfg), "    stream: true\n", "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, out, errOut := runCLI("check", "-config", polled); !strings.Contains(out+errOut, "margin_call is never reported") {
		t.Errorf("check says nothing of margin_call on the same account polled:\n%s%s", out, errOut)
	}

	_, logs := startLoggedDaemon(t, cfg)
	waitStreaming(t, fake, logs, "ethusdt@markPrice@1s")
	pushed := time.Now()
	fake.PushUser(fake.MarginCall())
	took := waitNotice(t, hook, realTime, "margin-call", "", "event/critical").Sub(pushed)
	t.Logf("margin_call event at the webhook %s after the push", took.Round(time.Millisecond))
	time.Sleep(2 * time.Second) // nothing more may arrive
	if got := describe(notices(hook, "margin-call", "")); got != "event/critical" {
		t.Errorf("margin-call notices %q, want one event", got)
	}
}

// TestStreamCoinM: a streamed COIN-M account (dstream's mark price every
// 3 s, one connection per symbol), polled every 15 s: a mark moved towards
// the ETHUSD_PERP short's liquidation price raises the alert in real time,
// and moved back resolves it.
func TestStreamCoinM(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	t.Parallel()
	fake := newStreamFake(t, binancetest.COINM)
	hook := newReceiver(t)
	eth := positionOf(t, fake, "ETHUSD_PERP")
	if d := eth.distance(); d <= 11 {
		t.Fatalf("the fixture's ETHUSD_PERP short is %.2f%% from liquidation: the test needs it calm", d)
	}
	cfg := streamConfig(t, fake, hook, streamedAccount{"binance-coinm", "15s", "5m"}, "", liqRule("liquidation-near", "ETHUSD_PERP", 10, 5))
	_, logs := startLoggedDaemon(t, cfg)
	waitStreaming(t, fake, logs, "ethusd_perp@markPrice")
	polls := fake.Count("/dapi/v1/positionRisk")
	for _, s := range []struct {
		dist float64
		want string
	}{
		{7.5, "firing/warning"},
		{eth.distance(), "firing/warning resolved"},
	} {
		moved := time.Now()
		moveMark(t, fake, "ETHUSD_PERP", eth.markAt(s.dist))
		took := waitNotice(t, hook, realTime, "liquidation-near", "ETHUSD_PERP", s.want).Sub(moved)
		t.Logf("mark at %.1f%% from liquidation: %s at the webhook %s after the tick", s.dist, s.want, took.Round(time.Millisecond))
	}
	if n := fake.Count("/dapi/v1/positionRisk") - polls; n > 0 {
		t.Errorf("%d positionRisk reads while streaming: the alerts must come from the streams", n)
	}
}
