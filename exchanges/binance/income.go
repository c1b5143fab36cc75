package binance

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// transferTypes are the money movements into or out of a pool that are
// not trading: they become Snapshot.Transfers, so that drawdown measures
// trading losses only. One table serves both of Binance's vocabularies:
// the income history's types (GET /fapi/v1/income, /dapi/v1/income) and
// the user-data stream's ACCOUNT_UPDATE reasons ("m", whose "bc" is the
// wallet change without PnL and commission), which name some of the same
// movements differently.
//
//   - Income TRANSFER (deposits to and withdrawals from the futures
//     wallet), INTERNAL_TRANSFER (to or from another account),
//     CROSS_COLLATERAL_TRANSFER, STRATEGY_UMFUTURES_TRANSFER (to or from a
//     strategy sub-account): money moved by the user. The stream says
//     DEPOSIT, WITHDRAW, WITHDRAW_REJECT (a withdrawal handed back),
//     ASSET_TRANSFER and MARGIN_TRANSFER (between wallets);
//   - ADMIN_DEPOSIT, ADMIN_WITHDRAW (stream): money Binance moved in or out;
//   - COIN_SWAP_DEPOSIT, COIN_SWAP_WITHDRAW, AUTO_EXCHANGE (both): one
//     asset converted into another; each leg moves its own pool (in
//     multi-assets mode both legs land in the USD pool and nearly cancel);
//   - WELCOME_BONUS, CONTEST_REWARD, BFUSD_REWARD (income): credits from
//     Binance that no position earned.
//
// FUNDING_FEE (both) is funding: funding_paid_24h, never a transfer.
// Trading results stay out: income REALIZED_PNL, COMMISSION,
// INSURANCE_CLEAR (liquidation fee), DELIVERED_SETTELMENT, OPTIONS_*,
// POSITION_LIMIT_INCREASE_FEE and the fee rebates REFERRAL_KICKBACK,
// COMMISSION_REBATE, API_REBATE and FEE_RETURN, which lower the cost of
// trading; stream ORDER, INSURANCE_CLEAR, OPTIONS_PREMIUM_FEE,
// OPTIONS_SETTLE_PROFIT, and ADJUSTMENT and MARGIN_TYPE_CHANGE, which move
// no money in or out (should an adjustment credit or debit the wallet, the
// next income read classifies its row by type). COIN-M knows TRANSFER and
// WELCOME_BONUS of the income types.
var transferTypes = map[string]bool{
	// Income types.
	"TRANSFER":                    true,
	"INTERNAL_TRANSFER":           true,
	"CROSS_COLLATERAL_TRANSFER":   true,
	"STRATEGY_UMFUTURES_TRANSFER": true,
	"WELCOME_BONUS":               true,
	"CONTEST_REWARD":              true,
	"BFUSD_REWARD":                true,
	// Both.
	"COIN_SWAP_DEPOSIT":  true,
	"COIN_SWAP_WITHDRAW": true,
	"AUTO_EXCHANGE":      true,
	// ACCOUNT_UPDATE reasons.
	"DEPOSIT":         true,
	"WITHDRAW":        true,
	"WITHDRAW_REJECT": true,
	"ADMIN_DEPOSIT":   true,
	"ADMIN_WITHDRAW":  true,
	"ASSET_TRANSFER":  true,
	"MARGIN_TRANSFER": true,
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
	// period is the user-data stream's period (userPeriod) when the last
	// income read began, 0 when the stream was down; partial: that read
	// stopped at incomeMaxPages.
	period  uint64
	partial bool
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
//
// In real-time mode the user-data stream brings funding and transfers
// (ledger.go): while it has been up since the last income read began
// (incomeKept), income is read only every incomeDrift, for what the stream
// may have missed; after a gap in the stream (or when the stream saw what
// only an income read can hand out) the next Snapshot reads it at once.
// Rows the stream reported already count once (the ledger pairs them).
func (e *Exchange) refreshIncome(ctx context.Context, now time.Time, hot, force bool, pool func(asset string) string, usd bool) error {
	st := &e.cache.inc
	if !e.incomeWanted(now, hot, force) {
		return nil
	}
	period := e.readPeriod
	dayAgo := now.Add(-24 * time.Hour).UnixMilli()
	start := dayAgo
	if e.cache.incomeOK {
		start = max(st.cursor-incomeOverlap.Milliseconds(), dayAgo)
	}
	seen := map[string]int64{}
	for k, at := range st.seen {
		if at >= start {
			seen[k] = at
		}
	}
	cursor := st.cursor
	partial := false
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
			partial = true
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
	var rows []restTransfer
	for _, r := range fresh {
		v := p.f("income", r.income)
		switch {
		case r.typ == "FUNDING_FEE":
			if r.time >= dayAgo {
				funding = append(funding, fundingRow{asset: r.asset, amount: v, at: r.time})
			}
		case transferTypes[r.typ]:
			rows = append(rows, restTransfer{row: r, raw: v, amount: v, pool: pool(r.asset)})
		}
	}
	if p.err != nil {
		e.log.Warn("income not refreshed", "err", p.err)
		return nil
	}
	prices := map[string]float64{}
	priced := rows[:0]
	for _, t := range rows {
		if usd && !usdStable[t.row.asset] {
			px, ok := prices[t.row.asset]
			if !ok {
				var err error
				if px, err = e.usdPrice(ctx, t.row.asset); err != nil {
					if isKeyOrCtx(ctx, err) {
						return err
					}
					// Collateral without a USDT perpetual (WBETH, BNSOL…):
					// leave this one transfer out rather than hold back
					// every other one, a USDT withdrawal among them.
					e.log.Warn("a transfer into the USD pool could not be priced and is left out of the drawdown's transfers", "asset", t.row.asset, "amount", t.row.income, "err", err)
					continue
				}
				prices[t.row.asset] = px
			}
			t.amount *= px
		}
		priced = append(priced, t)
	}
	transfers := e.live.takeIncome(e.name, funding, usd, priced, now)
	st.cursor, st.seen, st.funding = cursor, seen, funding
	st.period, st.partial = period, partial
	st.pending = append(st.pending, transfers...)
	e.cache.incomeOK, e.cache.incomeAt = true, now
	return nil
}

// incomeWanted decides whether this Snapshot reads income. Polled (or
// while the user-data stream is down): every incomeTTL, or at once when
// force (a wallet moved without a trade). While the stream has kept
// funding and transfers since the last read: every incomeDrift. The first
// Snapshot, and the first after a gap in the stream, reads it whatever
// the time; above 80% of the weight budget (hot) none does.
func (e *Exchange) incomeWanted(now time.Time, hot, force bool) bool {
	st := &e.cache.inc
	age := now.Sub(e.cache.incomeAt)
	switch {
	case hot:
		return false
	case !e.cache.incomeOK:
		return true
	case e.live.incomeKept(st.period, e.readPeriod):
		// A read that stopped at incomeMaxPages goes on as when polled.
		return age >= incomeDrift || (st.partial && age >= incomeTTL)
	case e.readPeriod != 0:
		return true // the stream is up, but was not all along since the last read
	}
	return force || age >= incomeTTL
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
