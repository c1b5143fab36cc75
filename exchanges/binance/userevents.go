package binance

import (
	"strconv"
	"strings"
	"time"

	"github.com/adshao/go-binance/v2/delivery"
	"github.com/adshao/go-binance/v2/futures"
)

// The user-data events as go-binance decodes them, turned into the live
// view's updates. USDⓈ-M and COIN-M differ in shape only: COIN-M has no
// ALGO_UPDATE (its stops are regular orders) and go-binance's delivery
// package decodes every event type into one struct, so an unknown type
// arrives as an event here rather than as an error.

// onUSDM handles one USDⓈ-M user-data event of connection c.
func (e *Exchange) onUSDM(c *userConn, ev *futures.WsUserDataEvent) {
	now := e.now()
	switch ev.Event {
	case futures.UserDataEventTypeAccountUpdate:
		a := &ev.AccountUpdate
		bals := make([]balanceUpd, 0, len(a.Balances))
		for _, b := range a.Balances {
			bals = append(bals, balanceUpd{b.Asset, b.Balance, b.CrossWalletBalance, b.ChangeBalance})
		}
		m := moneyUpd{reason: string(a.Reason), eventTime: ev.Time, txMs: ev.TransactionTime, bals: bals}
		poss := make([]positionUpd, 0, len(a.Positions))
		for _, p := range a.Positions {
			poss = append(poss, positionUpd{p.Symbol, string(p.Side), p.Amount, p.EntryPrice, p.UnrealizedPnL, string(p.MarginType), p.IsolatedWallet})
		}
		e.changedView(e.applyAccount(m, poss, now))
	case futures.UserDataEventTypeOrderTradeUpdate:
		o := &ev.OrderTradeUpdate
		e.onOrder(o.Symbol, o.ClientOrderID, string(o.Side), string(o.PositionSide), string(o.Type), string(o.ExecutionType), string(o.Status),
			o.ID, o.OriginalQty, o.AccumulatedFilledQty, o.StopPrice, o.ActivationPrice, o.CallbackRate, o.AveragePrice, o.LastFilledPrice,
			o.IsReduceOnly, o.IsClosingPosition, o.TradeTime, now)
	case futures.UserDataEventTypeAlgoUpdate:
		a := &ev.AlgoUpdate
		p := parser{op: "user-data ALGO_UPDATE"}
		u := orderUpd{symbol: a.Symbol, open: a.AlgoStatus == "NEW", order: order{
			typ: string(a.OrderType), side: string(a.Side), positionSide: string(a.PositionSide),
			reduceOnly: a.ReduceOnly, closePosition: a.CloseAll,
			trigger: p.f("tp", a.TriggerPrice), qty: p.f("q", a.Quantity), id: a.AlgoID, algo: true,
		}}
		switch {
		case p.err != nil:
			e.log.Warn("user-data stream: an algo order update could not be read; waiting for a REST snapshot", "err", p.err)
			e.invalidate(a.Symbol, now)
			e.changedView(false)
		case u.open && u.typ == "TRAILING_STOP_MARKET":
			// ALGO_UPDATE carries no activation price or callback rate:
			// where such a stop fires is known to openAlgoOrders only.
			e.invalidate(a.Symbol, now)
			e.changedView(false)
		case e.applyOrder(u, now):
			e.changedView(false)
		default:
			e.live.heard(now)
		}
	case futures.UserDataEventTypeMarginCall:
		rows := make([]mcPos, 0, len(ev.MarginCallPositions))
		for _, p := range ev.MarginCallPositions {
			rows = append(rows, mcPos{p.Symbol, string(p.Side), p.Amount, string(p.MarginType), p.MarkPrice, p.UnrealizedPnL, p.MaintenanceMarginRequired})
		}
		if e.marginCall(ev.Time, ev.CrossWalletBalance, rows, now) {
			e.changedView(false)
		}
	case futures.UserDataEventTypeAccountConfigUpdate:
		ac := &ev.AccountConfigUpdate
		if ac.Symbol == "" {
			// The multi-assets mode switched ("ai", which go-binance does
			// not decode): the pools are different now.
			e.invalidate("", now)
			e.changedView(false)
		} else if e.setLeverage(ac.Symbol, float64(ac.Leverage), now) {
			e.changedView(false)
		}
	case futures.UserDataEventTypeListenKeyExpired:
		c.signalExpired()
	default:
		e.live.heard(now) // TRADE_LITE, CONDITIONAL_ORDER_TRIGGER_REJECT, …
	}
}

// onCOINM handles one COIN-M user-data event of connection c.
func (e *Exchange) onCOINM(c *userConn, ev *delivery.WsUserDataEvent) {
	now := e.now()
	switch ev.Event {
	case delivery.UserDataEventTypeAccountUpdate:
		a := &ev.AccountUpdate
		bals := make([]balanceUpd, 0, len(a.Balances))
		for _, b := range a.Balances {
			bals = append(bals, balanceUpd{b.Asset, b.Balance, b.CrossWalletBalance, b.BalanceChange})
		}
		m := moneyUpd{reason: string(a.Reason), eventTime: ev.Time, txMs: ev.TransactionTime, bals: bals}
		poss := make([]positionUpd, 0, len(a.Positions))
		for _, p := range a.Positions {
			poss = append(poss, positionUpd{p.Symbol, string(p.Side), p.Amount, p.EntryPrice, p.UnrealizedPnL, string(p.MarginType), p.IsolatedWallet})
		}
		e.changedView(e.applyAccount(m, poss, now))
	case delivery.UserDataEventTypeOrderTradeUpdate:
		o := &ev.OrderTradeUpdate
		e.onOrder(o.Symbol, o.ClientOrderID, string(o.Side), string(o.PositionSide), string(o.Type), string(o.ExecutionType), string(o.Status),
			o.ID, o.OriginalQty, o.AccumulatedFilledQty, o.StopPrice, o.ActivationPrice, o.CallbackRate, o.AveragePrice, o.LastFilledPrice,
			o.IsReduceOnly, o.IsClosingPosition, o.TradeTime, now)
	case delivery.UserDataEventTypeMarginCall:
		rows := make([]mcPos, 0, len(ev.MarginCallPositions))
		for _, p := range ev.MarginCallPositions {
			rows = append(rows, mcPos{p.Symbol, string(p.Side), p.Amount, string(p.MarginType), p.MarkPrice, p.UnrealizedPnL, p.MaintenanceMarginRequired})
		}
		if e.marginCall(ev.Time, ev.CrossWalletBalance, rows, now) {
			e.changedView(false)
		}
	case delivery.UserDataEventTypeListenKeyExpired:
		c.signalExpired()
	case delivery.UserDataEventTypeAccountConfigUpdate:
		e.live.heard(now) // leverage only; go-binance's delivery package does not decode it
	default:
		e.badFrame(unknownEvent(string(ev.Event)))
		e.live.heard(now)
	}
}

// unknownEvent is the error of an event type the adapter does not know.
type unknownEvent string

func (u unknownEvent) Error() string { return "unexpected event type: " + strconv.Quote(string(u)) }

func (c *userConn) signalExpired() {
	select {
	case c.expired <- struct{}{}:
	default:
	}
}

// onOrder handles an ORDER_TRADE_UPDATE: a forced order's fill (a
// liquidation or ADL) becomes a liquidation event; any other order
// updates the stops of its symbol.
func (e *Exchange) onOrder(symbol, clientID, side, positionSide, typ, exec, status string, id int64,
	qty, filled, stop, activate, rate, avg, last string, reduceOnly, closePosition bool, tradeTime int64, now time.Time) {
	forced := typ == "LIQUIDATION" || typ == "ADL" || exec == "CALCULATED" ||
		strings.HasPrefix(clientID, "autoclose-") || strings.HasPrefix(clientID, "adl_autoclose")
	p := parser{op: "user-data ORDER_TRADE_UPDATE"}
	q, z := p.f("q", qty), p.f("z", filled)
	if forced {
		if exec != "CALCULATED" && exec != "TRADE" && z == 0 {
			e.live.heard(now) // placed, not filled yet
			return
		}
		price := avg
		if price == "" || price == "0" {
			price = last
		}
		at := ms(tradeTime)
		if at.IsZero() {
			at = now
		}
		if e.liquidation(liqFill{symbol: symbol, side: side, positionSide: positionSide, clientOrderID: clientID, typ: typ,
			orderID: id, qty: filled, price: price, at: at}, now) {
			e.changedView(false)
		} else {
			e.live.heard(now)
		}
		return
	}
	u := orderUpd{symbol: symbol, open: status == "NEW" || status == "PARTIALLY_FILLED", order: order{
		typ: typ, side: side, positionSide: positionSide, reduceOnly: reduceOnly, closePosition: closePosition,
		trigger: p.f("sp", stop), activate: p.f("AP", activate), rate: p.f("cr", rate), qty: max(q-z, 0), id: id,
	}}
	if p.err != nil {
		e.log.Warn("user-data stream: an order update could not be read; waiting for a REST snapshot", "err", p.err)
		e.invalidate(symbol, now)
		e.changedView(false)
		return
	}
	if e.applyOrder(u, now) {
		e.changedView(false)
	} else {
		e.live.heard(now)
	}
}
