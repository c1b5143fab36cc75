package binance

import (
	"context"
	"math"
	"net/url"
	"strconv"
	"time"

	"github.com/adshao/go-binance/v2/futures"

	"github.com/marginwatch/marginwatch/exchanges"
)

// premiumAllWeight is the weight of GET /fapi/v1/premiumIndex without a
// symbol (every symbol at once); with a symbol it costs 1. The adapter asks
// for everything once when that is cheaper than one request per symbol.
const premiumAllWeight = 1

// snapshotUSDM reads a USDⓈ-M account. Every poll: account (v2: totals,
// multi-assets mode, per-position leverage and margin type; weight 5),
// positionRisk (v3: mark, liquidation price, maintenance margin, isolated
// wallet; 5), premiumIndex (funding rate and time; 1), and per held symbol
// the open algo orders (1) and, only when the algo orders leave a position of
// that symbol without a stop, the open orders (1). Cached: fundingInfo
// (hourly), 1h klines (per closed candle), FUNDING_FEE income (5 min).
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

	if err := e.premiumUSDM(ctx, hs, symbols); err != nil {
		return nil, err
	}
	if err := e.stopsUSDM(ctx, hs, symbols); err != nil {
		return nil, err
	}
	hot := e.tr.hot(hostOf(e.base))
	if hot {
		e.log.Warn("above 80% of Binance's request weight this minute; serving funding intervals, candles and income from cache", "used_weight", e.UsedWeight())
	}
	if len(symbols) > 0 {
		if err := e.refreshFunding(ctx, now, hot); err != nil {
			return nil, err
		}
	}
	if err := e.refreshCandles(ctx, symbols, now, hot); err != nil {
		return nil, err
	}
	if err := e.refreshIncome(ctx, now, hot); err != nil {
		return nil, err
	}

	ap := parser{op: "GET /fapi/v2/account"}
	asset := "USDT" // single-asset mode: Binance's account totals are USDT's
	if acct.MultiAssetsMargin {
		asset = "USD" // multi-assets mode: every total is in USD
	}
	b := exchanges.Balance{
		Asset:              asset,
		WalletBalance:      ap.f("totalWalletBalance", acct.TotalWalletBalance),
		UnrealizedPnL:      ap.f("totalUnrealizedProfit", acct.TotalUnrealizedProfit),
		MarginBalance:      ap.f("totalMarginBalance", acct.TotalMarginBalance),
		MaintMargin:        ap.f("totalMaintMargin", acct.TotalMaintMargin),
		AvailableBalance:   ap.f("availableBalance", acct.AvailableBalance),
		CrossWalletBalance: ap.f("totalCrossWalletBalance", acct.TotalCrossWalletBalance),
		CrossUnPnL:         ap.f("totalCrossUnPnl", acct.TotalCrossUnPnl),
		FundingPaid24h:     e.cache.fundingPaid(""),
	}
	if ap.err != nil {
		return nil, ap.err
	}
	// totalMaintMargin counts the isolated positions too; the cross margin
	// ratio (the Binance app's) takes only the cross ones. In single-asset
	// mode the totals are USDT's, so only USDT isolated positions come off.
	b.CrossMaintMargin = b.MaintMargin
	for i := range hs {
		if hs[i].MarginType == exchanges.Isolated && (acct.MultiAssetsMargin || hs[i].MarginAsset == "" || hs[i].MarginAsset == "USDT") {
			b.CrossMaintMargin -= hs[i].MaintMargin
		}
	}
	b.CrossMaintMargin = max(b.CrossMaintMargin, 0)

	return e.finish(now, false, []exchanges.Balance{b}, hs), nil
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
	return snap
}

// premiumUSDM sets the funding rate and next funding time (and the mark
// price where positionRisk gave none) from premiumIndex.
func (e *Exchange) premiumUSDM(ctx context.Context, hs []held, symbols []string) error {
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
			if err := e.do(ctx, "GET /fapi/v1/premiumIndex", func(ctx context.Context) error {
				res, err := e.fc.NewPremiumIndexService().Symbol(s).Do(ctx)
				all = append(all, res...)
				return err
			}); err != nil {
				return err
			}
		}
	}
	byS := make(map[string]*futures.PremiumIndex, len(symbols))
	for _, pi := range all {
		if pi != nil {
			byS[pi.Symbol] = pi
		}
	}
	p := parser{op: "GET /fapi/v1/premiumIndex"}
	for i := range hs {
		h := &hs[i]
		pi := byS[h.Symbol]
		if pi == nil {
			continue
		}
		h.FundingRate = p.f("lastFundingRate", pi.LastFundingRate)
		h.NextFundingTime = ms(pi.NextFundingTime)
		if h.MarkPrice == 0 {
			h.MarkPrice = p.f("markPrice", pi.MarkPrice)
		}
	}
	return p.err
}

// stopsUSDM sets HasStopLoss from the open algo orders (where Binance keeps
// conditional orders since December 2025) and, for symbols where those
// leave a position unprotected, the open orders. Per symbol, because the
// unfiltered lists cost weight 40 each.
func (e *Exchange) stopsUSDM(ctx context.Context, hs []held, symbols []string) error {
	for _, s := range symbols {
		var algo []futures.GetAlgoOrderResp
		if err := e.do(ctx, "GET /fapi/v1/openAlgoOrders", func(ctx context.Context) error {
			var err error
			algo, err = e.fc.NewListOpenAlgoOrdersService().Symbol(s).Do(ctx)
			return err
		}); err != nil {
			return err
		}
		os := make([]order, 0, len(algo))
		for _, o := range algo {
			os = append(os, order{string(o.OrderType), string(o.Side), string(o.PositionSide), o.ReduceOnly, o.ClosePosition})
		}
		markStops(hs, s, os)
		if allProtected(hs, s) {
			continue
		}
		var open []*futures.Order
		if err := e.do(ctx, "GET /fapi/v1/openOrders", func(ctx context.Context) error {
			var err error
			open, err = e.fc.NewListOpenOrdersService().Symbol(s).Do(ctx)
			return err
		}); err != nil {
			return err
		}
		os = os[:0]
		for _, o := range open {
			if o != nil {
				os = append(os, order{string(o.Type), string(o.Side), string(o.PositionSide), o.ReduceOnly, o.ClosePosition})
			}
		}
		markStops(hs, s, os)
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
