package binance

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
)

// fmtF writes a figure the way Binance does in a frame.
func fmtF(v float64) string { return strconv.FormatFloat(v, 'f', 8, 64) }

// liveOK reads Live until it is ok and cond holds, collecting the
// transfers each ok read hands out into got.
func (s *streamed) liveOK(t *testing.T, what string, got *[]exchanges.Transfer, cond func(exchanges.Snapshot) bool) exchanges.Snapshot {
	t.Helper()
	var snap exchanges.Snapshot
	s.wait(t, what, func() bool {
		_, ok := s.ex.Live(&snap)
		if ok && got != nil {
			*got = append(*got, snap.Transfers...)
		}
		return ok && cond(snap)
	})
	return snap
}

// A FUNDING_FEE ACCOUNT_UPDATE moves the pool's funding_paid_24h by
// exactly its bc, in the live view and in the Snapshot that reconciles
// it, once however often the frame arrives (the two connections of a
// forced reconnect both deliver it). Cross: only B. Isolated: B and the
// position whose isolated wallet paid, as Binance pushes them.
func TestStreamFunding(t *testing.T) {
	for _, c := range []struct {
		name     string
		exchange string
		account  binancetest.Account
		asset    string
		isolated string // the isolated position's symbol, "" for cross
		bc       float64
	}{
		{"USDⓈ-M cross", USDM, binancetest.USDMOneWay, "USDT", "", -1.75},
		{"USDⓈ-M isolated", USDM, binancetest.USDMOneWay, "USDT", "ETHUSDT", -0.5},
		{"COIN-M cross", COINM, binancetest.COINM, "BTC", "", -0.00002},
		{"COIN-M isolated", COINM, binancetest.COINM, "ETH", "ETHUSD_PERP", 0.00003}, // received
	} {
		t.Run(c.name, func(t *testing.T) {
			s := startStream(t, c.exchange, binancetest.Options{Account: c.account}, func(sc *streamConf) { sc.reseedGap = 20 * time.Millisecond })
			before := s.liveOK(t, "the seeded view", nil, func(exchanges.Snapshot) bool { return true })
			pool := poolOf(before, c.asset)
			if pool == nil || pool.FundingPaid24h != pool.FundingPaid24h {
				t.Fatalf("pool %s %+v: no funding_paid_24h from the seeding income read", c.asset, pool)
			}
			base, wallet := pool.FundingPaid24h, pool.WalletBalance
			var poss []binancetest.PositionUpdate
			if c.isolated != "" {
				p := posOf(before, c.isolated, exchanges.Short)
				poss = []binancetest.PositionUpdate{{Symbol: c.isolated, Amount: "-" + strconv.FormatFloat(p.Size, 'f', -1, 64),
					Entry: fmtF(p.EntryPrice), UnrealizedPnL: fmtF(p.UnrealizedPnL), MarginType: "isolated", IsolatedWallet: fmtF(p.IsolatedWallet + c.bc)}}
			}
			cw := pool.CrossWalletBalance
			if c.isolated == "" {
				cw += c.bc
			}
			frame := s.srv.AccountUpdate("FUNDING_FEE", []binancetest.Balance{{Asset: c.asset, Wallet: fmtF(wallet + c.bc), CrossWallet: fmtF(cw), Change: fmtF(c.bc)}}, poss)
			moved := func(snap exchanges.Snapshot) bool {
				b := poolOf(snap, c.asset)
				return b != nil && near(b.FundingPaid24h-base, -c.bc)
			}
			// Pushed once: an isolated position's wallet change waits for
			// the REST read the view asks for, which a frame pushed again
			// and again would never let finish.
			s.srv.PushUser(frame)
			s.live(t, "the funding in the live view", moved)
			s.srv.PushUser(frame) // again: counted once
			s.srv.PushUser(s.srv.MarginCall())
			after := s.liveOK(t, "the margin call after the duplicate", nil, func(snap exchanges.Snapshot) bool { return len(snap.Events) > 0 })
			if !moved(after) {
				t.Errorf("funding_paid_24h %v after the duplicate frame, want %v + %v", poolOf(after, c.asset).FundingPaid24h, base, -c.bc)
			}
			rest, err := s.ex.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !moved(*rest) {
				t.Errorf("reconciling Snapshot: funding_paid_24h %v, want %v + %v", poolOf(*rest, c.asset).FundingPaid24h, base, -c.bc)
			}
		})
	}
}

// DEPOSIT and WITHDRAW ACCOUNT_UPDATEs each become one Transfer, with the
// sign of bc, once across duplicate frames; the income read of the drift
// check does not hand out again what the stream did, and hands out what
// the stream missed.
func TestStreamTransfers(t *testing.T) {
	for _, c := range []struct {
		exchange, asset string
		account         binancetest.Account
		incomePath      string
	}{
		{USDM, "USDT", binancetest.USDMOneWay, "/fapi/v1/income"},
		{COINM, "BTC", binancetest.COINM, "/dapi/v1/income"},
	} {
		t.Run(c.exchange, func(t *testing.T) {
			s := startStream(t, c.exchange, binancetest.Options{Account: c.account}, nil)
			ctx := context.Background()
			clk := s.clock.Now
			// The first reconciliation in the stream's period reads income
			// (the seed came before the stream): from then on it is kept.
			if _, err := s.ex.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
			var got []exchanges.Transfer
			seed := s.liveOK(t, "the view", &got, func(exchanges.Snapshot) bool { return true })
			wallet := poolOf(seed, c.asset).WalletBalance
			t0 := clk()
			dep := s.srv.AccountUpdate("DEPOSIT", []binancetest.Balance{{Asset: c.asset, Wallet: fmtF(wallet + 100), CrossWallet: fmtF(wallet + 100), Change: "100.00000000"}}, nil)
			s.srv.PushUser(dep)
			s.liveOK(t, "the deposit", &got, walletIs(c.asset, wallet+100))
			s.srv.PushUser(dep)
			wd := s.srv.AccountUpdate("WITHDRAW", []binancetest.Balance{{Asset: c.asset, Wallet: fmtF(wallet + 60), CrossWallet: fmtF(wallet + 60), Change: "-40.00000000"}}, nil)
			s.srv.PushUser(wd)
			s.srv.PushUser(wd)
			s.liveOK(t, "the withdrawal", &got, walletIs(c.asset, wallet+60))
			want := []exchanges.Transfer{
				{ID: fmt.Sprintf("main/stream/DEPOSIT/%s/%d", c.asset, t0.UnixMilli()), Pool: c.asset, Amount: 100, Time: t0},
				{ID: fmt.Sprintf("main/stream/WITHDRAW/%s/%d", c.asset, t0.UnixMilli()), Pool: c.asset, Amount: -40, Time: t0},
			}
			check := func(what string, got, want []exchanges.Transfer) {
				t.Helper()
				if len(got) != len(want) {
					t.Fatalf("%s: transfers %+v, want %+v", what, got, want)
				}
				for i := range want {
					g, w := got[i], want[i]
					if g.ID != w.ID || g.Pool != w.Pool || g.Amount != w.Amount || !g.Time.Equal(w.Time) {
						t.Errorf("%s: transfer %d = %+v, want %+v", what, i, g, w)
					}
				}
			}
			check("stream", got, want)

			// The income history books both, and one the stream missed.
			s.srv.AddIncome(
				binancetest.Income{Type: "TRANSFER", Amount: "100", Asset: c.asset, Time: t0.Add(20 * time.Millisecond)},
				binancetest.Income{Type: "TRANSFER", Amount: "-40", Asset: c.asset, Time: t0.Add(30 * time.Millisecond)},
				binancetest.Income{Type: "TRANSFER", Amount: "7", Asset: c.asset, Time: t0.Add(time.Second)},
			)
			// A reconciliation while the stream kept everything: no income read.
			s.srv.ResetCounts()
			snap, err := s.ex.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n := s.srv.Count(c.incomePath); n != 0 || len(snap.Transfers) != 0 {
				t.Errorf("kept reconciliation: %d income reads, transfers %+v; want none", n, snap.Transfers)
			}
			// An hour on, the drift check reads income: only the 7 is new.
			s.clock.Advance(incomeDrift)
			s.srv.ResetCounts()
			snap, err = s.ex.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if n := s.srv.Count(c.incomePath); n != 1 {
				t.Errorf("drift check: %d income reads, want 1", n)
			}
			if len(snap.Transfers) != 1 {
				t.Fatalf("drift check: transfers %+v, want only the 7 the stream missed", snap.Transfers)
			}
			if g := snap.Transfers[0]; !strings.HasPrefix(g.ID, "main/TRANSFER/"+c.asset+"/") || g.Pool != c.asset || g.Amount != 7 || !g.Time.Equal(t0.Add(time.Second)) {
				t.Errorf("drift check: transfer %+v, want the income row's 7 %s", g, c.asset)
			}
			_ = check
		})
	}
}

// reconPaths are the reads a reconciliation of a streamed account may
// skip, per exchange.
var reconPaths = map[string]struct{ income, orders, algo, premium string }{
	USDM:  {"/fapi/v1/income", "/fapi/v1/openOrders", "/fapi/v1/openAlgoOrders", "/fapi/v1/premiumIndex"},
	COINM: {"/dapi/v1/income", "/dapi/v1/openOrders", "", "/dapi/v1/premiumIndex"},
}

// A reconciliation reads income and every symbol's open orders again
// after the user-data stream was down (a gap), and not while the stream
// has kept them since the last read.
func TestReconcileAfterGap(t *testing.T) {
	for _, c := range []struct {
		exchange string
		account  binancetest.Account
		symbols  int
	}{
		{USDM, binancetest.USDMOneWay, 3},
		{COINM, binancetest.COINM, 2},
	} {
		t.Run(c.exchange, func(t *testing.T) {
			s := startStream(t, c.exchange, binancetest.Options{Account: c.account}, nil)
			p := reconPaths[c.exchange]
			reconcile := func(what string, reads int) {
				t.Helper()
				s.clock.Advance(5 * time.Minute)
				s.srv.ResetCounts()
				if _, err := s.ex.Snapshot(context.Background()); err != nil {
					t.Fatal(err)
				}
				income, orders := s.srv.Count(p.income), s.srv.Count(p.orders)+s.srv.Count(p.algo)
				wantOrders := 0
				if reads > 0 {
					wantOrders = c.symbols
					if p.algo != "" {
						wantOrders *= 2
					}
				}
				if income != reads || orders != wantOrders {
					t.Errorf("%s: %d income and %d open-order reads (%v), want %d and %d", what, income, orders, s.srv.Weights(), reads, wantOrders)
				}
			}
			// The seed came after the stream was up: no gap.
			reconcile("first reconciliation in the stream", 0)
			reconcile("kept", 0)
			s.srv.ResetCounts()
			s.srv.DropUserStreams()
			// The reconnection reads the view again at once, income and
			// open orders included: what was pushed meanwhile is lost.
			s.wait(t, "the reconnection and its read", func() bool {
				st := s.ex.StreamStatus()
				return st.Reconnects >= 1 && st.Up && s.srv.UserConnections() == 1 && s.srv.Count(p.income) == 1 && s.ex.live.needsSeed() == false
			})
			reconcile("after the gap, read at the reconnection", 0)
			reconcile("kept after the gap", 0)
		})
	}
}

// While the stream keeps the open orders, a reconciliation takes the
// stops from the live view: a stop the stream cancelled does not come
// back from an older REST read, one it placed is there. A trailing algo
// stop, whose ALGO_UPDATE lacks its callback, has its symbol's orders
// read again.
func TestReconcileKeepsStreamStops(t *testing.T) {
	s := startStream(t, USDM, binancetest.Options{Account: binancetest.USDMOneWay}, nil)
	ctx := context.Background()
	if _, err := s.ex.Snapshot(ctx); err != nil { // the gap read: every symbol's orders
		t.Fatal(err)
	}
	stops := func(snap exchanges.Snapshot, symbol string, side exchanges.Side) []exchanges.Stop {
		if p := posOf(snap, symbol, side); p != nil {
			return p.Stops
		}
		return nil
	}
	if len(stops(view(s.ex), "BTCUSDT", exchanges.Long)) != 1 || len(stops(view(s.ex), "SOLUSDT", exchanges.Long)) != 0 {
		t.Fatalf("seeded stops: BTC %v, SOL %v", stops(view(s.ex), "BTCUSDT", exchanges.Long), stops(view(s.ex), "SOLUSDT", exchanges.Long))
	}
	// REST still lists the BTC algo stop: only the stream knows it is gone.
	s.srv.PushUser(s.srv.AlgoUpdate(binancetest.Order{ID: 2148627, Type: "STOP_MARKET", Symbol: "BTCUSDT", Side: "SELL", Trigger: "55000", ClosePosition: true}, "CANCELED"))
	s.srv.PushUser(s.srv.OrderUpdate(binancetest.Order{ID: 555, Type: "STOP_MARKET", Symbol: "SOLUSDT", Side: "SELL", Trigger: "120", Quantity: "100", ReduceOnly: true}, "NEW"))
	s.live(t, "the stream's stops", func(snap exchanges.Snapshot) bool {
		return len(stops(snap, "BTCUSDT", exchanges.Long)) == 0 && len(stops(snap, "SOLUSDT", exchanges.Long)) == 1
	})
	for i := range 3 { // each kind of the old rotation's turn
		s.clock.Advance(5 * time.Minute)
		snap, err := s.ex.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(stops(*snap, "BTCUSDT", exchanges.Long)); n != 0 {
			t.Errorf("reconciliation %d: BTCUSDT has %d stops, want none (cancelled on the stream)", i+1, n)
		}
		if n := len(stops(*snap, "SOLUSDT", exchanges.Long)); n != 1 {
			t.Errorf("reconciliation %d: SOLUSDT has %d stops, want the one placed on the stream", i+1, n)
		}
		live := s.live(t, "the reseeded view", func(exchanges.Snapshot) bool { return true })
		if len(stops(live, "BTCUSDT", exchanges.Long)) != 0 || len(stops(live, "SOLUSDT", exchanges.Long)) != 1 {
			t.Errorf("reconciliation %d: the live view's stops BTC %v, SOL %v", i+1, stops(live, "BTCUSDT", exchanges.Long), stops(live, "SOLUSDT", exchanges.Long))
		}
	}
	// A trailing stop on ETHUSDT (short: BUY): the stream cannot place it,
	// so its symbol's orders are read again.
	trail := binancetest.Order{ID: 901, Type: "TRAILING_STOP_MARKET", Symbol: "ETHUSDT", Side: "BUY", Quantity: "10", Rate: "1", ReduceOnly: true}
	s.srv.SetBody("/fapi/v1/openAlgoOrders", "["+binancetest.AlgoOrderRow(trail)+"]")
	before := s.srv.Count("/fapi/v1/openAlgoOrders")
	s.srv.PushUser(s.srv.AlgoUpdate(trail, "NEW"))
	s.wait(t, "the algo orders read again", func() bool { return s.srv.Count("/fapi/v1/openAlgoOrders") > before })
	live := s.live(t, "the trailing stop", func(snap exchanges.Snapshot) bool { return len(stops(snap, "ETHUSDT", exchanges.Short)) == 2 })
	if len(stops(live, "BTCUSDT", exchanges.Long)) != 0 {
		t.Errorf("BTCUSDT stops %v after ETHUSDT's read, want none", stops(live, "BTCUSDT", exchanges.Long))
	}
}

// TestReconcileWeight measures the reconciliations of a streamed account
// with the fake's table of Binance's weights, N = 3 symbols, every 5
// minutes for two hours, and holds them to the 20 and to Cost.
// USDⓈ-M: account 5 + positionRisk 5 + premiumIndex 3 × 1 = 13, no open
// orders (the stream keeps them), income (30) hourly; COIN-M: account 5 +
// positionRisk 1, premiumIndex (10) every third, income (20) hourly. The
// hourly caches as when polled. Listen-key requests are left out: their
// keepalive runs on the wall clock (Cost counts it, 1 in 30 minutes).
func TestReconcileWeight(t *testing.T) {
	for _, c := range []struct {
		exchange string
		account  binancetest.Account
		steady   []int // the weights of a reconciliation without an hourly read
		listen   string
	}{
		{USDM, binancetest.USDMOneWay, []int{13}, "/fapi/v1/listenKey"},
		{COINM, binancetest.COINM, []int{6, 16}, "/dapi/v1/listenKey"},
	} {
		t.Run(c.exchange, func(t *testing.T) {
			s := startStream(t, c.exchange, binancetest.Options{Account: c.account}, nil)
			ctx := context.Background()
			if c.exchange == COINM { // a third symbol, as in TestWeightCOINM (the seed had two)
				risk := strings.TrimSpace(s.srv.Body("/dapi/v1/positionRisk"))
				link := `{"symbol": "LINKUSD_PERP", "positionAmt": "100", "entryPrice": "14.0", "breakEvenPrice": "14.01", "markPrice": "15.00000000", "unRealizedProfit": "0.47619048", "liquidationPrice": "9.00000000", "leverage": "10", "maxQty": "50000", "marginType": "cross", "isolatedMargin": "0.00000000", "isAutoAddMargin": "false", "positionSide": "BOTH", "updateTime": 1627026881327}`
				s.srv.SetBody("/dapi/v1/positionRisk", strings.TrimSuffix(risk, "]")+","+link+"]")
			}
			weight := func() int { return s.srv.Weight() - s.srv.Weights()[c.listen] }
			// Start-up: the key check (on the fake's one host), the
			// seeding Snapshot and the listen key, as Cost says.
			if first, cost := s.srv.Weight(), s.ex.Cost(); first != cost.First {
				t.Errorf("start-up weight %d (%v), Cost.First %d", first, s.srv.Weights(), cost.First)
			}
			// The seed (before the stream was up) and the first
			// reconciliation in the stream, which reads what the gap
			// may have missed.
			s.srv.ResetCounts()
			if _, err := s.ex.Snapshot(ctx); err != nil {
				t.Fatal(err)
			}
			gap := weight()
			const n = 24
			var total, worst int
			steady := map[int]int{}
			for range n {
				s.clock.Advance(5 * time.Minute)
				s.srv.ResetCounts()
				snap, err := s.ex.Snapshot(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(snap.Positions) != 3 {
					t.Fatalf("%d positions, want 3", len(snap.Positions))
				}
				w := weight()
				total += w
				worst = max(worst, w)
				steady[w]++
			}
			avg := float64(total) / n
			cost := s.ex.Cost()
			t.Logf("%s streamed, N=3: first reconciliation in the stream %d, then %d reconciliations every 5 min: %.2f on average, heaviest %d, by weight %v; Cost %+v",
				c.exchange, gap, n, avg, worst, steady, cost)
			if avg > 20 {
				t.Errorf("average reconciliation weight %.2f > 20", avg)
			}
			if avg > float64(cost.Poll) || avg < float64(cost.Poll)-1.5 {
				t.Errorf("average reconciliation %.2f, Cost.Poll %d", avg, cost.Poll)
			}
			got := 0
			for _, w := range c.steady {
				got += steady[w]
			}
			if got < n-4 {
				t.Errorf("reconciliations by weight %v: want all but the hourly ones at %v", steady, c.steady)
			}
		})
	}
}
