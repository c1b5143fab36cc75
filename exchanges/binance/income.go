package binance

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// transferTypes are the income types that move money into or out of a
// pool without trading: they become Snapshot.Transfers, so that drawdown
// measures trading losses only. Binance's list (GET /fapi/v1/income):
//
//   - TRANSFER (deposits to and withdrawals from the futures wallet),
//     INTERNAL_TRANSFER (to or from another account), CROSS_COLLATERAL_TRANSFER,
//     STRATEGY_UMFUTURES_TRANSFER (to or from a strategy sub-account):
//     money moved by the user;
//   - COIN_SWAP_DEPOSIT, COIN_SWAP_WITHDRAW, AUTO_EXCHANGE: one asset
//     converted into another; each leg moves its own pool (in multi-assets
//     mode both legs land in the USD pool and nearly cancel);
//   - WELCOME_BONUS, CONTEST_REWARD, BFUSD_REWARD: credits from Binance
//     that no position earned.
//
// Trading results stay out: REALIZED_PNL, FUNDING_FEE, COMMISSION,
// INSURANCE_CLEAR (liquidation fee), DELIVERED_SETTELMENT, OPTIONS_*,
// POSITION_LIMIT_INCREASE_FEE and the fee rebates REFERRAL_KICKBACK,
// COMMISSION_REBATE, API_REBATE and FEE_RETURN, which lower the cost of
// trading. COIN-M knows TRANSFER and WELCOME_BONUS of these.
var transferTypes = map[string]bool{
	"TRANSFER":                    true,
	"INTERNAL_TRANSFER":           true,
	"CROSS_COLLATERAL_TRANSFER":   true,
	"STRATEGY_UMFUTURES_TRANSFER": true,
	"COIN_SWAP_DEPOSIT":           true,
	"COIN_SWAP_WITHDRAW":          true,
	"AUTO_EXCHANGE":               true,
	"WELCOME_BONUS":               true,
	"CONTEST_REWARD":              true,
	"BFUSD_REWARD":                true,
}

// usdStable are the assets a multi-assets USD pool takes one to one, as
// Binance's funding and this adapter's funding sum do; any other asset is
// converted at the mark price of its USDT perpetual.
var usdStable = map[string]bool{"USD": true, "USDT": true, "USDC": true, "FDUSD": true, "BFUSD": true, "BUSD": true, "USDE": true}

// incomeState is what the incremental income read remembers.
type incomeState struct {
	// cursor is the time (ms) of the newest row read; the next read starts
	// incomeOverlap before it (or 24h ago, whichever is later).
	cursor int64
	// seen holds the rows already read (type/asset/tranId → time ms) that
	// the next read can return again.
	seen map[string]int64
	// funding is every FUNDING_FEE row of the last 24h.
	funding []fundingRow
	// pending are transfers read but not yet handed out by a successful
	// Snapshot.
	pending []exchanges.Transfer
	// wallets and held are the last poll's wallet balance per asset and
	// positions, to notice a wallet that moved without a trade.
	wallets map[string]string
	held    string
}

type fundingRow struct {
	asset  string
	amount float64 // income: negative when paid
	at     int64
}

// incomeRow is one row of the income history.
type incomeRow struct {
	id, typ, asset, income string
	time                   int64
}

func (r incomeRow) key() string { return r.typ + "/" + r.asset + "/" + r.id }

// incomeDue reports whether income should be read before its TTL: a wallet
// balance moved while the positions stayed as they were, which only
// funding or a transfer does; read at once, the transfer reaches the
// drawdown in the same poll as the wallet change (at most once a minute).
func (e *Exchange) incomeDue(now time.Time, wallets map[string]string, hs []held) bool {
	var b strings.Builder
	for i := range hs {
		fmt.Fprintf(&b, "%s/%s/%g;", hs[i].Symbol, hs[i].Side, hs[i].Size)
	}
	st := &e.cache.inc
	prev, prevHeld := st.wallets, st.held
	st.wallets, st.held = wallets, b.String()
	if prev == nil || prevHeld != st.held || now.Sub(e.cache.incomeAt) < incomeMinGap {
		return false
	}
	for a, w := range wallets {
		if prev[a] != w {
			return true
		}
	}
	return len(prev) != len(wallets)
}

// refreshIncome reads the income history incrementally, every incomeTTL or
// at once when force: from incomeOverlap before the newest row read (24h
// on the first read) to now, every income type in one read, so that
// funding and transfers share it. It keeps the FUNDING_FEE rows of the
// last 24h for funding_paid_24h and queues each transfer row (see
// transferTypes) once, for the next successful Snapshot; pool names the
// pool of an asset and usd says whether the pool is the multi-assets USD
// one (amounts converted to USD). A failure keeps the last state (funding
// sums or none: funding_paid_24h absent) and the next refresh reads the
// same rows again.
//
// Binance returns at most 1,000 rows a request, oldest first, so a read
// goes page by page, each from the time of the previous page's last row:
// rows of one millisecond may straddle two pages, so the next page starts
// at it (not after it) and rows already read are recognised by key. At
// most incomeMaxPages pages are read (30 weight each); beyond that the read
// stops where it got to, a warning says funding_paid_24h is partial, and
// the next refresh goes on from there.
//
// The first read reports the transfers of its whole window (the last
// 24h), those made while the daemon was down among them, so that a
// withdrawal made meanwhile does not read as a loss after a restart. The
// equity history applies each transfer ID once, so one already applied
// before the restart is not applied again.
func (e *Exchange) refreshIncome(ctx context.Context, now time.Time, hot, force bool, pool func(asset string) string, usd bool) error {
	st := &e.cache.inc
	if hot || (e.cache.income != nil && !force && now.Sub(e.cache.incomeAt) < incomeTTL) {
		return nil
	}
	dayAgo := now.Add(-24 * time.Hour).UnixMilli()
	start := dayAgo
	if e.cache.income != nil {
		start = max(st.cursor-incomeOverlap.Milliseconds(), dayAgo)
	}
	seen := map[string]int64{}
	for k, at := range st.seen {
		if at >= start {
			seen[k] = at
		}
	}
	cursor := st.cursor
	var fresh []incomeRow
	for page := 1; ; page++ {
		got, err := e.incomePage(ctx, start)
		if err != nil {
			if isKeyOrCtx(ctx, err) {
				return err
			}
			e.log.Warn("income not refreshed; funding_paid_24h uses the last known and transfers wait for the next read", "err", err)
			return nil
		}
		n := 0
		last := start
		for _, r := range got {
			last = max(last, r.time)
			if at, ok := seen[r.key()]; ok {
				seen[r.key()] = max(at, r.time)
				continue
			}
			seen[r.key()] = r.time
			n++
			fresh = append(fresh, r)
		}
		cursor = max(cursor, last)
		if len(got) < incomePageLimit {
			break
		}
		if page == incomeMaxPages {
			e.log.Warn("income has more rows than the adapter reads at once; funding_paid_24h covers only part of the last 24h until the next reads catch up",
				"pages", page, "rows", len(seen), "covered_until", ms(last).Format(time.RFC3339))
			break
		}
		start = last
		if n == 0 {
			// A whole page within one millisecond: step past it rather than
			// read it forever.
			start = last + 1
		}
	}

	p := parser{op: "GET income"}
	funding := st.funding[:0:0]
	for _, f := range st.funding {
		if f.at >= dayAgo {
			funding = append(funding, f)
		}
	}
	var transfers []exchanges.Transfer
	prices := map[string]float64{}
	for _, r := range fresh {
		v := p.f("income", r.income)
		switch {
		case r.typ == "FUNDING_FEE":
			if r.time >= dayAgo {
				funding = append(funding, fundingRow{asset: r.asset, amount: v, at: r.time})
			}
		case transferTypes[r.typ]:
			amount := v
			if usd && !usdStable[r.asset] {
				px, ok := prices[r.asset]
				if !ok {
					var err error
					if px, err = e.usdPrice(ctx, r.asset); err != nil {
						if isKeyOrCtx(ctx, err) {
							return err
						}
						// Collateral without a USDT perpetual (WBETH, BNSOL…):
						// leave this one transfer out rather than hold back
						// every other one, a USDT withdrawal among them.
						e.log.Warn("a transfer into the USD pool could not be priced and is left out of the drawdown's transfers", "asset", r.asset, "amount", r.income, "err", err)
						continue
					}
					prices[r.asset] = px
				}
				amount *= px
			}
			transfers = append(transfers, exchanges.Transfer{
				ID:     fmt.Sprintf("%s/%s/%s/%s", e.name, r.typ, r.asset, r.id),
				Pool:   pool(r.asset),
				Amount: amount,
				Time:   ms(r.time),
			})
		}
	}
	if p.err != nil {
		e.log.Warn("income not refreshed", "err", p.err)
		return nil
	}
	sums := map[string]float64{}
	for _, f := range funding {
		sums[f.asset] -= f.amount // income is what the account received: a paid fee is negative
	}
	st.cursor, st.seen, st.funding = cursor, seen, funding
	st.pending = append(st.pending, transfers...)
	e.cache.income, e.cache.incomeAt = sums, now
	return nil
}

// takeTransfers hands out the queued transfers, once.
func (e *Exchange) takeTransfers() []exchanges.Transfer {
	t := e.cache.inc.pending
	e.cache.inc.pending = nil
	return t
}

// usdPrice is the USD value of one asset for a multi-assets transfer: the
// mark price of its USDT perpetual (premiumIndex, weight 1).
func (e *Exchange) usdPrice(ctx context.Context, asset string) (float64, error) {
	var mark string
	err := e.do(ctx, "GET /fapi/v1/premiumIndex", func(ctx context.Context) error {
		res, err := e.fc.NewPremiumIndexService().Symbol(asset + "USDT").Do(ctx)
		for _, r := range res {
			if r != nil && r.Symbol == asset+"USDT" {
				mark = r.MarkPrice
			}
		}
		return err
	})
	if err != nil {
		return 0, err
	}
	p := parser{op: "GET /fapi/v1/premiumIndex " + asset + "USDT"}
	v := p.f("markPrice", mark)
	if p.err == nil && v <= 0 {
		return 0, fmt.Errorf("GET /fapi/v1/premiumIndex: no mark price for %sUSDT", asset)
	}
	return v, p.err
}

// incomePage reads up to incomePageLimit income rows of every type from
// start (ms, inclusive), oldest first.
func (e *Exchange) incomePage(ctx context.Context, start int64) ([]incomeRow, error) {
	var rows []incomeRow
	if e.fc != nil {
		err := e.do(ctx, "GET /fapi/v1/income", func(ctx context.Context) error {
			res, err := e.fc.NewGetIncomeHistoryService().StartTime(start).Limit(incomePageLimit).Do(ctx)
			for _, r := range res {
				if r != nil {
					rows = append(rows, incomeRow{id: itoa(r.TranID), typ: r.IncomeType, asset: r.Asset, income: r.Income, time: r.Time})
				}
			}
			return err
		})
		return rows, err
	}
	// go-binance's delivery package has no income service, and the futures
	// one mis-reads COIN-M's string tranId: read it here.
	var res []struct {
		Asset      string `json:"asset"`
		Income     string `json:"income"`
		IncomeType string `json:"incomeType"`
		Time       int64  `json:"time"`
		TranID     string `json:"tranId"`
	}
	q := url.Values{"startTime": {itoa(start)}, "limit": {itoa(incomePageLimit)}}
	err := e.do(ctx, "GET /dapi/v1/income", func(ctx context.Context) error {
		return e.get(ctx, e.base, "/dapi/v1/income", q, true, &res)
	})
	for _, r := range res {
		rows = append(rows, incomeRow{id: r.TranID, typ: r.IncomeType, asset: r.Asset, income: r.Income, time: r.Time})
	}
	return rows, err
}
