package simulated

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// ErrClosed is returned by Snapshot after Close.
var ErrClosed = errors.New("simulated exchange closed")

// walletBalance is the account's total wallet balance in USDT, isolated
// wallets included.
const walletBalance = 50000

const (
	fundingInterval = 8 * time.Hour
	candleCount     = 30
)

// holding is one position of the fixed book.
type holding struct {
	symbol     string
	side       exchanges.Side
	marginType exchanges.MarginType
	size       float64
	entry      float64
	leverage   float64
	// One maintenance bracket per symbol: MM = notional × mmr − maintAmount.
	mmr, maintAmount float64
	// stops rest on the closing side (reduce-only or close-position).
	stops []exchanges.Stop
	// Synthetic candle history: amp is the amplitude of the hourly price wave
	// and band the intrahour range, both relative to the price; phase varies
	// the wave per symbol.
	amp, band, phase float64
}

// book is the account every scenario starts from. The BTC position is the
// risky one: isolated 5x, its only stop below its liquidation price (49,799)
// where it can never fire; the others are protected by stops (a
// close-position, a reduce-only one, a trailing one) and low leverage. Every notional stays below 10% of equity so that a
// size_pct_equity > 10 rule stays quiet in every scenario.
var book = []holding{
	{symbol: "BTCUSDT", side: exchanges.Long, marginType: exchanges.Isolated, size: 0.075, entry: 62000, leverage: 5,
		mmr: 0.004, stops: []exchanges.Stop{{Trigger: 49000, ClosePosition: true}}, amp: 0.015, band: 0.008, phase: 0.3},
	{symbol: "ETHUSDT", side: exchanges.Short, marginType: exchanges.Cross, size: 1.5, entry: 3000, leverage: 3,
		mmr: 0.005, stops: []exchanges.Stop{{Trigger: 3300, ClosePosition: true}}, amp: 0.02, band: 0.01, phase: 1.1},
	{symbol: "SOLUSDT", side: exchanges.Long, marginType: exchanges.Isolated, size: 20, entry: 150, leverage: 3,
		mmr: 0.01, stops: []exchanges.Stop{{Trigger: 135, Quantity: 20}}, amp: 0.03, band: 0.015, phase: 2.0},
	{symbol: "BNBUSDT", side: exchanges.Long, marginType: exchanges.Cross, size: 5, entry: 600, leverage: 2,
		mmr: 0.005, stops: []exchanges.Stop{{Trigger: 570, Quantity: 5, Trailing: true}}, amp: 0.012, band: 0.008, phase: 2.7},
}

// isolatedWallet is the margin an isolated position was opened with: its
// entry notional over its leverage.
func (h *holding) isolatedWallet() float64 {
	if h.marginType != exchanges.Isolated {
		return 0
	}
	return h.size * h.entry / h.leverage
}

// point is one vertex of a path: value v at scenario time at.
type point struct {
	at time.Duration
	v  float64
}

// path is a piecewise-linear function of scenario time, constant before its
// first and after its last vertex. Vertices are in time order.
type path []point

func (p path) at(t time.Duration) float64 {
	if t <= p[0].at {
		return p[0].v
	}
	for i := 1; i < len(p); i++ {
		if t <= p[i].at {
			a, b := p[i-1], p[i]
			return a.v + (b.v-a.v)*float64(t-a.at)/float64(b.at-a.at)
		}
	}
	return p[len(p)-1].v
}

// flat is a path that never moves.
func flat(v float64) path { return path{{0, v}} }

// sec is n seconds of scenario time.
func sec(n float64) time.Duration { return time.Duration(n * float64(time.Second)) }

// scenario holds one price path and one funding-rate path (per 8h) per
// holding, in book order.
type scenario struct {
	prices  []path
	funding []path
}

var calmPrices = []path{
	{{0, 61800}, {sec(20), 62100}, {sec(40), 61900}, {sec(60), 62000}},
	{{0, 2990}, {sec(20), 2985}, {sec(40), 2995}, {sec(60), 2990}},
	{{0, 148}, {sec(20), 149}, {sec(40), 147.5}, {sec(60), 148}},
	{{0, 605}, {sec(20), 606}, {sec(40), 604}, {sec(60), 605}},
}

var baseFunding = []path{flat(0.0001), flat(0.00008), flat(0.0001), flat(0.00005)}

var scenarios = map[string]scenario{
	"calm": {prices: calmPrices, funding: baseFunding},
	"crash": {
		prices: []path{
			// BTC liquidation price 49,799.20 (see doc.go for the distances).
			{{0, 61800}, {sec(12), 58000}, {sec(25), 52500}, {sec(28), 52200}, {sec(35), 52300}, {sec(48), 60500}, {sec(60), 61300}},
			{{0, 2990}, {sec(25), 2900}, {sec(60), 2960}},
			{{0, 148}, {sec(25), 140}, {sec(60), 146}},
			{{0, 605}, {sec(25), 590}, {sec(60), 600}},
		},
		funding: baseFunding,
	},
	"funding-spike": {
		prices: calmPrices,
		funding: []path{
			baseFunding[0],
			baseFunding[1],
			{{0, 0.0001}, {sec(10), 0.0001}, {sec(15), 0.003}, {sec(40), 0.003}, {sec(50), 0.0001}},
			baseFunding[3],
		},
	},
}

// Scenarios returns the names New accepts, sorted.
func Scenarios() []string {
	names := make([]string, 0, len(scenarios))
	for n := range scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// end is when the scenario's last path stops moving.
func (sc scenario) end() time.Duration {
	var end time.Duration
	for _, ps := range [][]path{sc.prices, sc.funding} {
		for _, p := range ps {
			end = max(end, p[len(p)-1].at)
		}
	}
	return end
}

// Exchange is a simulated account. It is safe for concurrent use.
type Exchange struct {
	name   string
	sc     scenario
	now    func() time.Time
	start  time.Time
	log    *slog.Logger
	closed atomic.Bool
	// ended is set once the end of the scenario has been announced.
	ended atomic.Bool
}

var _ exchanges.Exchange = (*Exchange)(nil)

// New returns a simulated account running scenario ("crash",
// "funding-spike", "calm"). now is the clock (time.Now in production, and
// when nil); the scenario's time 0 is the first call to now() inside New.
// The first Snapshot past the scenario's end logs, once, that it is over
// (a demo user would otherwise wait for more); logger nil discards that.
// An unknown scenario is an error that lists the valid ones.
func New(scenario string, now func() time.Time, logger *slog.Logger) (*Exchange, error) {
	sc, ok := scenarios[scenario]
	if !ok {
		return nil, fmt.Errorf("simulated: unknown scenario %q (valid: %s)", scenario, strings.Join(Scenarios(), ", "))
	}
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Exchange{name: scenario, sc: sc, now: now, start: now(), log: logger}, nil
}

// End is how long after New the scenario's prices and funding rates stop
// moving; from then on they hold their last values.
func (e *Exchange) End() time.Duration { return e.sc.end() }

// Close ends the simulation; later Snapshots return ErrClosed.
func (e *Exchange) Close() error {
	e.closed.Store(true)
	return nil
}

// Snapshot returns the account at the current scenario time. It fails only
// when ctx is done (ctx.Err()) or after Close (ErrClosed).
func (e *Exchange) Snapshot(ctx context.Context) (*exchanges.Snapshot, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if e.closed.Load() {
		return nil, ErrClosed
	}
	now := e.now()
	t := max(now.Sub(e.start), 0) // a clock stepping back replays time 0, never before it
	if t >= e.sc.end() && e.ended.CompareAndSwap(false, true) {
		e.log.Info("demo scenario finished: prices and funding now stay put and no new alert will come; stop with Ctrl-C, or delete the state folder to watch it again", "scenario", e.name, "after", e.sc.end())
	}
	snap := &exchanges.Snapshot{Time: now, Positions: make([]exchanges.Position, len(book))}

	b := exchanges.Balance{Asset: "USDT", WalletBalance: walletBalance, CrossWalletBalance: walletBalance}
	var initial, paid float64
	for i := range book {
		h := &book[i]
		mark := e.sc.prices[i].at(t)
		rate := e.sc.funding[i].at(t)
		sign := h.side.Sign()
		notional := h.size * mark
		p := exchanges.Position{
			Symbol:          h.symbol,
			Side:            h.side,
			MarginAsset:     "USDT",
			Pool:            "USDT",
			MarginType:      h.marginType,
			Size:            h.size,
			EntryPrice:      h.entry,
			MarkPrice:       mark,
			Leverage:        h.leverage,
			Notional:        notional,
			UnrealizedPnL:   h.size * (mark - h.entry) * sign,
			MaintMargin:     notional*h.mmr - h.maintAmount,
			IsolatedWallet:  h.isolatedWallet(),
			FundingRate:     rate,
			FundingInterval: fundingInterval,
			NextFundingTime: now.UTC().Truncate(fundingInterval).Add(fundingInterval),
			Stops:           slices.Clone(h.stops),
			Candles:         e.candles(i, now),
		}
		snap.Positions[i] = p

		b.UnrealizedPnL += p.UnrealizedPnL
		b.MaintMargin += p.MaintMargin
		if h.marginType == exchanges.Isolated {
			b.CrossWalletBalance -= p.IsolatedWallet
			initial += p.IsolatedWallet
		} else {
			b.CrossUnPnL += p.UnrealizedPnL
			b.CrossMaintMargin += p.MaintMargin
			initial += notional / h.leverage
		}
		// The last three fundings: two at the symbol's usual rate, the latest
		// at the current one, so a spike shows in the 24h total.
		paid += sign * notional * (2*e.sc.funding[i].at(0) + rate)
	}
	b.MarginBalance = b.WalletBalance + b.UnrealizedPnL
	b.AvailableBalance = max(b.MarginBalance-initial, 0)
	b.FundingPaid24h = paid
	snap.Balances = []exchanges.Balance{b}

	for i := range snap.Positions {
		p := &snap.Positions[i]
		h := &book[i]
		wb, tmm, upnl := p.IsolatedWallet, 0.0, 0.0
		if h.marginType == exchanges.Cross {
			wb = b.CrossWalletBalance
			tmm = b.CrossMaintMargin - p.MaintMargin
			upnl = b.CrossUnPnL - p.UnrealizedPnL
		}
		p.LiquidationPrice = liquidationPrice(wb, tmm, upnl, h.maintAmount, h.side.Sign(), h.size, h.entry, h.mmr)
	}
	return snap, nil
}

// liquidationPrice is Binance's one-way-mode liquidation price
//
//	LP = (WB − TMM1 + UPNL1 + cumB − side × size × EP) / (size × MMR − side × size)
//
// wb is the wallet backing the position (its isolated wallet, or the cross
// wallet balance); tmm1 and upnl1 are the maintenance margin and unrealized
// PnL of the other cross positions (0 for isolated); cumB is the bracket's
// maintenance amount; side is +1 long, −1 short. A result <= 0 means the
// position cannot be liquidated and is reported as 0 (none).
func liquidationPrice(wb, tmm1, upnl1, cumB, side, size, ep, mmr float64) float64 {
	den := size*mmr - side*size
	if den == 0 {
		return 0
	}
	lp := (wb - tmm1 + upnl1 + cumB - side*size*ep) / den
	if lp <= 0 || math.IsNaN(lp) || math.IsInf(lp, 0) {
		return 0
	}
	return lp
}

// priceAt is holding i's price at real time t: the scenario path from time 0
// on, and before it a deterministic wave that meets the path at time 0.
func (e *Exchange) priceAt(i int, t time.Time) float64 {
	if d := t.Sub(e.start); d >= 0 {
		return e.sc.prices[i].at(d)
	}
	h := &book[i]
	hours := e.start.Sub(t).Hours()
	return e.sc.prices[i].at(0) * (1 + h.amp*(math.Sin(0.9*hours+h.phase)-math.Sin(h.phase)))
}

// candles returns holding i's last candleCount closed 1h candles at now,
// oldest first. A candle's high and low are the extremes of priceAt at its
// open, its close and any path vertex inside it, widened by the holding's
// intrahour band.
func (e *Exchange) candles(i int, now time.Time) []exchanges.Candle {
	h := &book[i]
	end := now.UTC().Truncate(time.Hour)
	c := make([]exchanges.Candle, candleCount)
	for k := range c {
		open := end.Add(time.Duration(k-candleCount) * time.Hour)
		closeAt := open.Add(time.Hour)
		o, cl := e.priceAt(i, open), e.priceAt(i, closeAt)
		hi, lo := max(o, cl), min(o, cl)
		for _, v := range e.sc.prices[i] {
			if at := e.start.Add(v.at); at.After(open) && at.Before(closeAt) {
				hi, lo = max(hi, v.v), min(lo, v.v)
			}
		}
		c[k] = exchanges.Candle{OpenTime: open, High: hi * (1 + h.band/2), Low: lo * (1 - h.band/2), Close: cl}
	}
	return c
}
