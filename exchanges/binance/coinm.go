package binance

import (
	"context"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/adshao/go-binance/v2/delivery"

	"github.com/marginwatch/marginwatch/exchanges"
)

// snapshotCOINM reads a COIN-M account. Every poll: account (per-asset
// totals; per-position maintenance margin; weight 5), positionRisk (mark,
// liquidation price, margin type, isolated margin; 1) and the open orders
// per held symbol (1): 6 + N. Cached: premiumIndex (10, every third poll;
// no go-binance service: read here; see premiumCOINM), exchangeInfo
// (contract sizes, hourly), fundingInfo and leverage brackets (hourly;
// brackets via the signed GET /dapi/v2/leverageBracket, no go-binance
// service), 1h klines (per closed candle), income (5 min; no
// go-binance service). COIN-M has no algo-order service: its
// stops are regular orders. The maintenance margin comes from the account's
// position row; a position that row does not cover (opened between the two
// reads) gets it from the brackets.
func (e *Exchange) snapshotCOINM(ctx context.Context) (*exchanges.Snapshot, error) {
	now := e.now()
	var acct *delivery.Account
	if err := e.do(ctx, "GET /dapi/v1/account", func(ctx context.Context) error {
		var err error
		acct, err = e.dc.NewGetAccountService().Do(ctx)
		return err
	}); err != nil {
		return nil, err
	}
	var risks []*delivery.PositionRisk
	if err := e.do(ctx, "GET /dapi/v1/positionRisk", func(ctx context.Context) error {
		var err error
		risks, err = e.dc.NewGetPositionRiskService().Do(ctx)
		return err
	}); err != nil {
		return nil, err
	}

	type acctPos struct {
		maint, leverage string
		isolated        bool
	}
	byKey := map[string]acctPos{}
	for _, p := range acct.Positions {
		if p != nil {
			byKey[p.Symbol+"/"+p.PositionSide] = acctPos{p.MaintMargin, p.Leverage, p.Isolated}
		}
	}

	p := parser{op: "GET /dapi/v1/positionRisk"}
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
		h.Size = math.Abs(amt)
		h.EntryPrice = p.f("entryPrice", r.EntryPrice)
		h.MarkPrice = p.f("markPrice", r.MarkPrice)
		h.LiquidationPrice = p.f("liquidationPrice", r.LiquidationPrice)
		h.UnrealizedPnL = p.f("unRealizedProfit", r.UnRealizedProfit)
		h.Leverage = p.f("leverage", r.Leverage)
		ap := byKey[r.Symbol+"/"+r.PositionSide]
		h.MaintMargin = p.f("maintMargin", ap.maint)
		// positionRisk's marginType is lower case ("isolated"), unlike
		// go-binance's constants.
		if strings.EqualFold(r.MarginType, "isolated") || ap.isolated {
			h.MarginType = exchanges.Isolated
			// COIN-M reports isolatedMargin = isolated wallet + unrealized PnL.
			h.IsolatedWallet = p.f("isolatedMargin", r.IsolatedMargin) - h.UnrealizedPnL
		} else {
			h.MarginType = exchanges.Cross
		}
		hs = append(hs, h)
	}
	if p.err != nil {
		return nil, p.err
	}
	symbols := symbolsOf(hs)

	if len(symbols) > 0 {
		if err := e.refreshContracts(ctx, now); err != nil {
			return nil, err
		}
	}
	for i := range hs {
		h := &hs[i]
		c, ok := e.cache.contracts[h.Symbol]
		if !ok {
			return nil, fmt.Errorf("GET /dapi/v1/exchangeInfo: symbol %s is not listed: its contract size is unknown", h.Symbol)
		}
		h.ContractSize, h.MarginAsset, h.Pool = c.size, c.marginAsset, c.marginAsset
	}
	if err := e.premiumCOINM(ctx, hs, now); err != nil {
		return nil, err
	}
	for i := range hs {
		h := &hs[i]
		if h.MarkPrice > 0 {
			h.Notional = h.Size * h.ContractSize / h.MarkPrice // inverse: in the margin coin
		}
	}
	if err := e.stopsCOINM(ctx, hs, symbols); err != nil {
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
	e.fillMaint(hs) // after Notional: COIN-M brackets go by quantity in the coin
	if err := e.refreshCandles(ctx, symbols, now, hot); err != nil {
		return nil, err
	}
	wallets := map[string]string{}
	for _, a := range acct.Assets {
		if a != nil {
			wallets[a.Asset] = a.WalletBalance
		}
	}
	same := func(asset string) string { return asset }
	if err := e.refreshIncome(ctx, now, hot, e.incomeDue(now, wallets, hs), same, false); err != nil {
		return nil, err
	}

	// One balance per margin asset that holds money or positions.
	inUse := map[string]bool{}
	for i := range hs {
		inUse[hs[i].MarginAsset] = true
	}
	ap := parser{op: "GET /dapi/v1/account"}
	var bs []exchanges.Balance
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
		if b.WalletBalance == 0 && !inUse[a.Asset] {
			continue
		}
		// The asset's maintMargin counts its isolated positions too.
		b.CrossMaintMargin = b.MaintMargin
		for i := range hs {
			if hs[i].MarginAsset == a.Asset && hs[i].MarginType == exchanges.Isolated {
				b.CrossMaintMargin -= hs[i].MaintMargin
			}
		}
		b.CrossMaintMargin = max(b.CrossMaintMargin, 0)
		bs = append(bs, b)
	}
	if ap.err != nil {
		return nil, ap.err
	}
	sort.Slice(bs, func(i, j int) bool { return bs[i].Asset < bs[j].Asset })
	return e.finish(now, true, bs, hs), nil
}

// refreshContracts re-reads contract sizes and margin assets hourly. Unlike
// the other caches it is needed: without a contract size there is no
// notional, so a first failure fails the Snapshot.
func (e *Exchange) refreshContracts(ctx context.Context, now time.Time) error {
	if e.cache.contracts != nil && now.Sub(e.cache.contractAt) < contractTTL {
		return nil
	}
	var info *delivery.ExchangeInfo
	err := e.do(ctx, "GET /dapi/v1/exchangeInfo", func(ctx context.Context) error {
		var err error
		info, err = e.dc.NewExchangeInfoService().Do(ctx)
		return err
	})
	if err != nil {
		if e.cache.contracts == nil || isKeyOrCtx(ctx, err) {
			return err
		}
		e.log.Warn("contract sizes not refreshed; using the last known", "err", err)
		return nil
	}
	m := make(map[string]contract, len(info.Symbols))
	for _, s := range info.Symbols {
		if s.ContractSize > 0 {
			m[s.Symbol] = contract{size: float64(s.ContractSize), marginAsset: s.MarginAsset}
		}
	}
	e.cache.contracts, e.cache.contractAt = m, now
	return nil
}

// premiumEvery is how many polls a COIN-M premiumIndex read serves:
// weighing 10 with or without a symbol, it cannot be read every poll
// within 10 + N, so the funding rate and time are at most this many polls
// old, as on USDⓈ-M.
const premiumEvery = readKinds

// premiumCOINM sets the funding rate and time (and the mark where
// positionRisk gave none) from GET /dapi/v1/premiumIndex, read for every
// symbol at once (weight 10 with or without one) on every premiumEvery-th
// poll, and at once when a held symbol is new since the last read or its
// funding time has passed since then (the rate it reported has just been
// paid). Between reads it is served from the last one. A symbol
// premiumIndex does not list keeps no funding rather than being asked for
// again every poll.
func (e *Exchange) premiumCOINM(ctx context.Context, hs []held, now time.Time) error {
	if len(hs) == 0 {
		return nil
	}
	c := &e.cache
	due := c.premium == nil || c.premiumPolls+1 >= premiumEvery
	for i := range hs {
		r, ok := c.premium[hs[i].Symbol]
		if !ok && !c.premiumKnown(hs[i].Symbol) {
			due = true
		}
		if ok && !r.nextFunding.IsZero() && !now.Before(r.nextFunding) && c.premiumAt.Before(r.nextFunding) {
			due = true
		}
	}
	if due {
		var rows []struct {
			Symbol          string `json:"symbol"`
			MarkPrice       string `json:"markPrice"`
			LastFundingRate string `json:"lastFundingRate"`
			NextFundingTime int64  `json:"nextFundingTime"`
		}
		if err := e.do(ctx, "GET /dapi/v1/premiumIndex", func(ctx context.Context) error {
			return e.get(ctx, e.base, "/dapi/v1/premiumIndex", nil, false, &rows)
		}); err != nil {
			return err
		}
		p := parser{op: "GET /dapi/v1/premiumIndex"}
		m := make(map[string]premiumRow, len(rows))
		for _, r := range rows {
			m[r.Symbol] = premiumRow{rate: p.f("lastFundingRate", r.LastFundingRate), nextFunding: ms(r.NextFundingTime), mark: p.f("markPrice", r.MarkPrice)}
		}
		if p.err != nil {
			return p.err
		}
		c.premium, c.premiumAt, c.premiumPolls = m, now, 0
		c.premiumAsked = map[string]bool{}
		for i := range hs {
			c.premiumAsked[hs[i].Symbol] = true
		}
	} else {
		c.premiumPolls++
	}
	for i := range hs {
		h := &hs[i]
		r := c.premium[h.Symbol]
		h.FundingRate, h.NextFundingTime = r.rate, r.nextFunding
		if h.MarkPrice == 0 {
			h.MarkPrice = r.mark
		}
	}
	return nil
}

// stopsCOINM sets the Stops of each position from the open orders of its
// symbol (after the mark is known: a trailing stop without an activation
// price is placed from it). In real-time mode the user-data stream keeps
// them: while it has been up since a symbol's orders were read (the same
// period), they are taken from the live view, which applied every
// ORDER_TRADE_UPDATE since.
func (e *Exchange) stopsCOINM(ctx context.Context, hs []held, symbols []string) error {
	period := e.readPeriod
	var view map[string][]order
	if period != 0 {
		view = e.live.ordersFor(symbols)
	}
	seen := e.cache.ordersPeriod
	e.cache.ordersPeriod = make(map[string]uint64, len(symbols)) // symbols no longer held are forgotten
	if e.seedOrders == nil {
		e.seedOrders = map[string][]order{}
	}
	for _, s := range symbols {
		if os, ok := view[s]; ok {
			if p, read := seen[s]; read && p == period {
				addStops(hs, s, os)
				e.seedOrders[s] = os
				e.cache.ordersPeriod[s] = p
				continue
			}
		}
		var open []*delivery.Order
		if err := e.do(ctx, "GET /dapi/v1/openOrders", func(ctx context.Context) error {
			var err error
			open, err = e.dc.NewListOpenOrdersService().Symbol(s).Do(ctx)
			return err
		}); err != nil {
			return err
		}
		p := parser{op: "GET /dapi/v1/openOrders"}
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
		addStops(hs, s, os)
		e.seedOrders[s] = os // for the live view (stream.go)
		e.cache.ordersPeriod[s] = period
		e.freshOrders(s)
	}
	return nil
}
