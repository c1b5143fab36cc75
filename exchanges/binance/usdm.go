package binance

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/adshao/go-binance/v2/futures"

	"github.com/marginwatch/marginwatch/exchanges"
)

// premiumAllWeight is the weight of GET /fapi/v1/premiumIndex without a
// symbol (every symbol at once); with a symbol it costs 1. When this many
// symbols or more are due on one poll, one request for all is cheaper.
const premiumAllWeight = 10

// The per-symbol reads of a USDⓈ-M poll. A steady poll re-reads one of them
// per held symbol, in this order, so each is at most readKinds polls old.
const (
	readPremium = iota // GET /fapi/v1/premiumIndex: funding rate, next funding time
	readOrders         // GET /fapi/v1/openOrders
	readAlgo           // GET /fapi/v1/openAlgoOrders (conditional orders)
	readKinds
)

// symbolState is what the adapter last read of one held USDⓈ-M symbol.
type symbolState struct {
	have [readKinds]bool // read at least once since the symbol was first held
	next int             // the kind the next steady poll re-reads

	rate        float64   // lastFundingRate
	nextFunding time.Time // nextFundingTime
	mark        float64   // premiumIndex mark, used where positionRisk has none
	premiumAt   time.Time // when rate and nextFunding were read

	orders, algo []order
	// period is the user-data stream's period (userPeriod) when each kind
	// was last read, 0 when the stream was down.
	period [readKinds]uint64
}

// snapshotUSDM reads a USDⓈ-M account. Every poll: account (v2: totals,
// multi-assets mode, per-position leverage and margin type; weight 5),
// positionRisk (v3: mark, liquidation price, maintenance margin, isolated
// wallet; 5) and, per held symbol, one of premiumIndex, open orders and open
// algo orders in turn (1; all three for a new symbol: see perSymbolUSDM).
// Cached: fundingInfo and leverage brackets (hourly), 1h klines (per closed
// candle), income (5 min; see refreshIncome).
func (e *Exchange) snapshotUSDM(ctx context.Context) (*exchanges.Snapshot, error) {
	now := e.now()
	var acct *futures.Account
	if err := e.do(ctx, "GET /fapi/v2/account", func(ctx context.Context) error {
		var err error
		acct, err = e.fc.NewGetAccountService().Do(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	var risks []*futures.PositionRiskV3
	if err := e.do(ctx, "GET /fapi/v3/positionRisk", func(ctx context.Context) error {
		var err error
		risks, err = e.fc.NewGetPositionRiskV3Service().Do(ctx)
		return err
	}); err != nil {
		return nil, err
	}

	// v2 account lists every symbol; only its leverage and margin type are
	// needed, by (symbol, positionSide).
	type setting struct {
		leverage string
		isolated bool
	}
	settings := map[string]setting{}
	for _, p := range acct.Positions {
		if p != nil {
			settings[p.Symbol+"/"+string(p.PositionSide)] = setting{p.Leverage, p.Isolated}
		}
	}

	p := parser{op: "GET /fapi/v3/positionRisk"}
	var hs []held
	for _, r := range risks {
		if r == nil {
			continue
		}
		amt := p.f("positionAmt", r.PositionAmt)
		if amt == 0 {
			continue
		}
		h := held{positionSide: r.PositionSide}
		h.Symbol = r.Symbol
		h.Side = sideOf(r.PositionSide, amt)
		h.MarginAsset = r.MarginAsset
		h.Size = math.Abs(amt)
		h.EntryPrice = p.f("entryPrice", r.EntryPrice)
		h.MarkPrice = p.f("markPrice", r.MarkPrice)
		h.LiquidationPrice = p.f("liquidationPrice", r.LiquidationPrice)
		h.Notional = math.Abs(p.f("notional", r.Notional))
		h.UnrealizedPnL = p.f("unRealizedProfit", r.UnRealizedProfit)
		h.MaintMargin = p.f("maintMargin", r.MaintMargin)
		wallet := p.f("isolatedWallet", r.IsolatedWallet)
		s, ok := settings[r.Symbol+"/"+r.PositionSide]
		if ok {
			h.Leverage = p.f("leverage", s.leverage)
		}
		// Without the account row (a position opened between the two
		// requests) an isolated wallet still tells the margin type.
		if (ok && s.isolated) || (!ok && wallet != 0) {
			h.MarginType = exchanges.Isolated
			h.IsolatedWallet = wallet
		} else {
			h.MarginType = exchanges.Cross
		}
		hs = append(hs, h)
	}
	if p.err != nil {
		return nil, p.err
	}
	symbols := symbolsOf(hs)

	if err := e.perSymbolUSDM(ctx, hs, symbols, now); err != nil {
		return nil, err
	}
	hot := e.tr.hot(hostOf(e.base))
	if hot {
		e.log.Warn("above 75% of Binance's request weight this minute; serving funding intervals, leverage brackets, candles and income from cache", "used_weight", e.UsedWeight())
	}
	if len(symbols) > 0 {
		if err := e.refreshFunding(ctx, now, hot); err != nil {
			return nil, err
		}
	}
	if err := e.refreshBrackets(ctx, symbols, now, hot); err != nil {
		return nil, err
	}
	e.fillMaint(hs)
	if err := e.refreshCandles(ctx, symbols, now, hot); err != nil {
		return nil, err
	}
	wallets := map[string]string{}
	for _, a := range acct.Assets {
		if a != nil {
			wallets[a.Asset] = a.WalletBalance
		}
	}
	pool := func(asset string) string { return asset }
	if acct.MultiAssetsMargin {
		pool = func(string) string { return "USD" }
	}
	if err := e.refreshIncome(ctx, now, hot, e.incomeDue(now, wallets, hs), pool, acct.MultiAssetsMargin); err != nil {
		return nil, err
	}

	bs, err := e.poolsUSDM(acct, hs)
	if err != nil {
		return nil, err
	}
	e.seedMulti = acct.MultiAssetsMargin
	return e.finish(now, false, bs, hs), nil
}

// poolsUSDM builds the margin pools of a USDⓈ-M account and names each
// position's pool. Single-asset mode: one pool per margin asset from the
// account's per-asset rows (Binance's total* fields are USDT's alone, so a
// USDC pool would be invisible in them); an asset without money or
// positions is left out. Multi-assets mode: one pool "USD" from the
// totals, which Binance gives in USD across every asset.
func (e *Exchange) poolsUSDM(acct *futures.Account, hs []held) ([]exchanges.Balance, error) {
	ap := parser{op: "GET /fapi/v2/account"}
	inUse := map[string]bool{}
	for i := range hs {
		h := &hs[i]
		if h.MarginAsset == "" {
			h.MarginAsset = marginAssetOf(h.Symbol, acct.Assets)
		}
		h.Pool = h.MarginAsset
		if acct.MultiAssetsMargin {
			h.Pool = "USD"
		}
		inUse[h.Pool] = true
	}
	// The pool's maintenance margin counts its isolated positions too; the
	// cross margin ratio (the Binance app's) takes only the cross ones.
	crossMaint := func(b *exchanges.Balance) {
		b.CrossMaintMargin = b.MaintMargin
		for i := range hs {
			if hs[i].Pool == b.Asset && hs[i].MarginType == exchanges.Isolated {
				b.CrossMaintMargin -= hs[i].MaintMargin
			}
		}
		b.CrossMaintMargin = max(b.CrossMaintMargin, 0)
	}
	var bs []exchanges.Balance
	if acct.MultiAssetsMargin {
		b := exchanges.Balance{
			Asset:              "USD",
			WalletBalance:      ap.f("totalWalletBalance", acct.TotalWalletBalance),
			UnrealizedPnL:      ap.f("totalUnrealizedProfit", acct.TotalUnrealizedProfit),
			MarginBalance:      ap.f("totalMarginBalance", acct.TotalMarginBalance),
			MaintMargin:        ap.f("totalMaintMargin", acct.TotalMaintMargin),
			AvailableBalance:   ap.f("availableBalance", acct.AvailableBalance),
			CrossWalletBalance: ap.f("totalCrossWalletBalance", acct.TotalCrossWalletBalance),
			CrossUnPnL:         ap.f("totalCrossUnPnl", acct.TotalCrossUnPnl),
			FundingPaid24h:     e.live.fundingPaid("", e.now()), // every asset's: USDT and USDC 1:1
		}
		crossMaint(&b)
		bs = append(bs, b)
	} else {
		for _, a := range acct.Assets {
			if a == nil {
				continue
			}
			b := exchanges.Balance{
				Asset:              a.Asset,
				WalletBalance:      ap.f("walletBalance", a.WalletBalance),
				UnrealizedPnL:      ap.f("unrealizedProfit", a.UnrealizedProfit),
				MarginBalance:      ap.f("marginBalance", a.MarginBalance),
				MaintMargin:        ap.f("maintMargin", a.MaintMargin),
				AvailableBalance:   ap.f("availableBalance", a.AvailableBalance),
				CrossWalletBalance: ap.f("crossWalletBalance", a.CrossWalletBalance),
				CrossUnPnL:         ap.f("crossUnPnl", a.CrossUnPnl),
				FundingPaid24h:     e.live.fundingPaid(a.Asset, e.now()),
			}
			if b.WalletBalance == 0 && b.MarginBalance == 0 && !inUse[a.Asset] {
				continue
			}
			crossMaint(&b)
			bs = append(bs, b)
		}
	}
	if ap.err != nil {
		return nil, ap.err
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].Asset < bs[j].Asset })
	for pool := range inUse {
		if !slices.ContainsFunc(bs, func(b exchanges.Balance) bool { return b.Asset == pool }) {
			return nil, fmt.Errorf("GET /fapi/v2/account: malformed response from Binance: positions are margined in %s but the account lists no %s asset row, so that margin pool is unknown", pool, pool)
		}
	}
	return bs, nil
}

// marginAssetOf is the margin asset of a position whose positionRisk row
// names none: the account asset its symbol ends with (BTCUSDC: USDC),
// else USDT.
func marginAssetOf(symbol string, assets []*futures.AccountAsset) string {
	best := ""
	for _, a := range assets {
		if a != nil && a.Asset != "" && strings.HasSuffix(symbol, a.Asset) && len(a.Asset) > len(best) {
			best = a.Asset
		}
	}
	if best == "" {
		return "USDT"
	}
	return best
}

// finish fills in the cached per-symbol data and builds the snapshot.
func (e *Exchange) finish(now time.Time, inverse bool, bs []exchanges.Balance, hs []held) *exchanges.Snapshot {
	snap := &exchanges.Snapshot{Time: now, Inverse: inverse, Balances: bs, Positions: make([]exchanges.Position, len(hs))}
	for i := range hs {
		h := &hs[i]
		h.FundingInterval = e.cache.fundingInterval(h.Symbol)
		if c := e.cache.klines[h.Symbol]; c != nil {
			h.Candles = c.list // shared by the positions of one symbol, read-only
		}
		snap.Positions[i] = h.Position
	}
	e.seedHeld = hs // for the live view, if the Snapshot succeeds (stream.go)
	return snap
}

// perSymbolUSDM sets the funding rate and next funding time (and the mark
// price where positionRisk gave none) and the Stops, from premiumIndex,
// the open orders and the open algo orders (where Binance keeps conditional
// orders since December 2025) of each held symbol.
//
// Read all three every poll, they would cost 3 weight per symbol; positionRisk
// already brings the mark and liquidation prices every poll, so a steady poll
// re-reads only one of them per symbol, in turn (premiumIndex, open orders,
// open algo orders), and serves the other two from the last read: each is at
// most three polls old. A symbol held for the first time gets all three at
// once, so its funding and stop are never unknown. A symbol whose funding
// time has passed since its last premiumIndex read gets it again at once:
// the rate it reported has just been paid. The unfiltered order lists would
// cost 40 each, so orders are always read per symbol.
func (e *Exchange) perSymbolUSDM(ctx context.Context, hs []held, symbols []string, now time.Time) error {
	if e.cache.symbols == nil {
		e.cache.symbols = map[string]*symbolState{}
	}
	keep := map[string]bool{}
	for _, s := range symbols {
		keep[s] = true
	}
	for s := range e.cache.symbols {
		if !keep[s] {
			delete(e.cache.symbols, s) // a position closed and reopened is new again
		}
	}
	// In real-time mode the user-data stream keeps the open orders: while
	// it has been up since a symbol's orders were read (the same period),
	// they are taken from the live view, which applied every order update
	// since, and only premiumIndex is read, every time.
	period := e.readPeriod
	var view map[string][]order
	if period != 0 {
		view = e.live.ordersFor(symbols)
	}
	kept := func(st *symbolState, s string, k int) bool {
		_, ok := view[s]
		return ok && st.have[k] && st.period[k] == period
	}
	var due [readKinds][]string
	var steady []*symbolState
	var fromView []string
	for _, s := range symbols {
		st := e.cache.symbols[s]
		if st == nil {
			st = &symbolState{}
			e.cache.symbols[s] = st
		}
		known := true
		for k := range readKinds {
			if !st.have[k] {
				known = false
				due[k] = append(due[k], s)
			}
		}
		if !known {
			continue
		}
		if period != 0 {
			due[readPremium] = append(due[readPremium], s)
			if kept(st, s, readOrders) && kept(st, s, readAlgo) {
				fromView = append(fromView, s)
			} else {
				due[readOrders] = append(due[readOrders], s)
				due[readAlgo] = append(due[readAlgo], s)
			}
			continue
		}
		due[st.next] = append(due[st.next], s)
		steady = append(steady, st)
		if st.next != readPremium && !st.nextFunding.IsZero() && !now.Before(st.nextFunding) && st.premiumAt.Before(st.nextFunding) {
			due[readPremium] = append(due[readPremium], s)
		}
	}

	if err := e.readPremiums(ctx, due[readPremium], now); err != nil {
		return err
	}
	for _, s := range due[readOrders] {
		var open []*futures.Order
		if err := e.do(ctx, "GET /fapi/v1/openOrders", func(ctx context.Context) error {
			var err error
			open, err = e.fc.NewListOpenOrdersService().Symbol(s).Do(ctx)
			return err
		}); err != nil {
			return err
		}
		p := parser{op: "GET /fapi/v1/openOrders"}
		os := make([]order, 0, len(open))
		for _, o := range open {
			if o != nil {
				os = append(os, order{
					typ: string(o.Type), side: string(o.Side), positionSide: string(o.PositionSide),
					reduceOnly: o.ReduceOnly, closePosition: o.ClosePosition,
					trigger: p.f("stopPrice", o.StopPrice), activate: p.f("activatePrice", o.ActivatePrice), rate: p.f("priceRate", o.PriceRate),
					qty: max(p.f("origQty", o.OrigQuantity)-p.f("executedQty", o.ExecutedQuantity), 0),
					id:  o.OrderID,
				})
			}
		}
		if p.err != nil {
			return p.err
		}
		st := e.cache.symbols[s]
		st.orders, st.have[readOrders], st.period[readOrders] = os, true, period
		e.freshOrders(s)
	}
	for _, s := range due[readAlgo] {
		os, err := e.openAlgoOrders(ctx, s)
		if err != nil {
			return err
		}
		st := e.cache.symbols[s]
		st.algo, st.have[readAlgo], st.period[readAlgo] = os, true, period
		e.freshOrders(s)
	}
	for _, s := range fromView {
		st := e.cache.symbols[s]
		st.orders, st.algo = splitAlgo(view[s])
	}
	// Every read succeeded: the steady symbols move on to their next kind.
	// After a failed poll they read the same kind again.
	for _, st := range steady {
		st.next = (st.next + 1) % readKinds
	}

	for i := range hs {
		h := &hs[i]
		st := e.cache.symbols[h.Symbol]
		h.FundingRate, h.NextFundingTime = st.rate, st.nextFunding
		if h.MarkPrice == 0 {
			h.MarkPrice = st.mark
		}
	}
	for _, s := range symbols {
		st := e.cache.symbols[s]
		addStops(hs, s, st.orders)
		addStops(hs, s, st.algo)
	}
	return nil
}

// splitAlgo splits a live view's order list into regular and algo orders.
func splitAlgo(os []order) (regular, algo []order) {
	for _, o := range os {
		if o.algo {
			algo = append(algo, o)
		} else {
			regular = append(regular, o)
		}
	}
	return regular, algo
}

// freshOrders notes that the read under way asked Binance for symbol's
// open orders (for the live view: see seed).
func (e *Exchange) freshOrders(symbol string) {
	if e.seedFresh == nil {
		e.seedFresh = map[string]bool{}
	}
	e.seedFresh[symbol] = true
}

// openAlgoOrders reads the open conditional orders of symbol (weight 1).
// go-binance's GetAlgoOrderResp lacks a trailing stop's activatePrice and
// callbackRate, so the list is read here.
func (e *Exchange) openAlgoOrders(ctx context.Context, symbol string) ([]order, error) {
	var res []struct {
		AlgoID        int64  `json:"algoId"`
		OrderType     string `json:"orderType"`
		Side          string `json:"side"`
		PositionSide  string `json:"positionSide"`
		Quantity      string `json:"quantity"`
		TriggerPrice  string `json:"triggerPrice"`
		ActivatePrice string `json:"activatePrice"`
		CallbackRate  string `json:"callbackRate"`
		ReduceOnly    bool   `json:"reduceOnly"`
		ClosePosition bool   `json:"closePosition"`
	}
	if err := e.do(ctx, "GET /fapi/v1/openAlgoOrders", func(ctx context.Context) error {
		return e.get(ctx, e.base, "/fapi/v1/openAlgoOrders", url.Values{"symbol": {symbol}}, true, &res)
	}); err != nil {
		return nil, err
	}
	p := parser{op: "GET /fapi/v1/openAlgoOrders"}
	os := make([]order, 0, len(res))
	for _, o := range res {
		os = append(os, order{
			typ: o.OrderType, side: o.Side, positionSide: o.PositionSide,
			reduceOnly: o.ReduceOnly, closePosition: o.ClosePosition,
			trigger: p.f("triggerPrice", o.TriggerPrice), activate: p.f("activatePrice", o.ActivatePrice), rate: p.f("callbackRate", o.CallbackRate),
			qty: p.f("quantity", o.Quantity), id: o.AlgoID, algo: true,
		})
	}
	return os, p.err
}

// readPremiums reads premiumIndex for symbols: one request per symbol
// (weight 1 each) or, from premiumAllWeight symbols on, one for all (10).
func (e *Exchange) readPremiums(ctx context.Context, symbols []string, now time.Time) error {
	if len(symbols) == 0 {
		return nil
	}
	var all []*futures.PremiumIndex
	if len(symbols) >= premiumAllWeight {
		if err := e.do(ctx, "GET /fapi/v1/premiumIndex", func(ctx context.Context) error {
			var err error
			all, err = e.fc.NewPremiumIndexService().Do(ctx)
			return err
		}); err != nil {
			return err
		}
	} else {
		for _, s := range symbols {
			err := e.do(ctx, "GET /fapi/v1/premiumIndex", func(ctx context.Context) error {
				res, err := e.fc.NewPremiumIndexService().Symbol(s).Do(ctx)
				all = append(all, res...)
				return err
			})
			var ae *APIError
			if errors.As(err, &ae) && ae.Code == codeInvalidSymbol {
				// A symbol being delisted or settled: no funding to show,
				// and no reason to fail the rest of the snapshot.
				e.log.Warn("premiumIndex does not list a held symbol; its funding rate is left at 0", "symbol", s)
				continue
			}
			if err != nil {
				return err
			}
		}
	}
	p := parser{op: "GET /fapi/v1/premiumIndex"}
	for _, pi := range all {
		if pi == nil {
			continue
		}
		st := e.cache.symbols[pi.Symbol]
		if st == nil {
			continue // not held
		}
		st.rate = p.f("lastFundingRate", pi.LastFundingRate)
		st.nextFunding = ms(pi.NextFundingTime)
		st.mark = p.f("markPrice", pi.MarkPrice)
		st.premiumAt = now
	}
	if p.err != nil {
		return p.err
	}
	// A symbol Binance did not list keeps no funding rather than being asked
	// for again every poll.
	for _, s := range symbols {
		e.cache.symbols[s].have[readPremium] = true
	}
	return nil
}

// hostOf is the host[:port] of a base URL.
func hostOf(base string) string {
	u, err := url.Parse(base)
	if err != nil {
		return base
	}
	return u.Host
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
