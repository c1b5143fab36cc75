package ruletest

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// account is a test's account as the steps so far leave it.
type account struct {
	balances  []exchanges.Balance
	positions []exchanges.Position
}

// apply carries the account forward with step s.
func (a *account) apply(s *Step) {
	for i := range s.Balances {
		a.balance(&s.Balances[i])
	}
	for i := range s.Positions {
		a.position(&s.Positions[i])
	}
}

func set(dst *float64, v *float64) {
	if v != nil {
		*dst = *v
	}
}

func (a *account) balance(in *Balance) {
	i := slices.IndexFunc(a.balances, func(b exchanges.Balance) bool { return b.Asset == in.Asset })
	if i < 0 {
		a.balances = append(a.balances, exchanges.Balance{Asset: in.Asset, FundingPaid24h: math.NaN()})
		i = len(a.balances) - 1
	}
	b := &a.balances[i]
	set(&b.WalletBalance, in.Wallet)
	set(&b.UnrealizedPnL, in.UnrealizedPnL)
	set(&b.MaintMargin, in.MaintMargin)
	set(&b.AvailableBalance, in.Available)
	set(&b.FundingPaid24h, in.FundingPaid24h)
	b.MarginBalance = b.WalletBalance + b.UnrealizedPnL
	set(&b.MarginBalance, in.MarginBalance)
	b.CrossWalletBalance, b.CrossUnPnL, b.CrossMaintMargin = b.WalletBalance, b.UnrealizedPnL, b.MaintMargin
	set(&b.CrossWalletBalance, in.CrossWallet)
	set(&b.CrossUnPnL, in.CrossUnPnL)
	set(&b.CrossMaintMargin, in.CrossMaintMargin)
}

func (a *account) position(in *Position) {
	side := exchanges.Side(in.Side)
	i := slices.IndexFunc(a.positions, func(p exchanges.Position) bool { return p.Symbol == in.Symbol && p.Side == side })
	if in.Closed {
		if i >= 0 {
			a.positions = slices.Delete(a.positions, i, i+1)
		}
		return
	}
	if i < 0 {
		a.positions = append(a.positions, exchanges.Position{Symbol: in.Symbol, Side: side, MarginType: exchanges.Cross})
		i = len(a.positions) - 1
	}
	p := &a.positions[i]
	if in.Pool != nil {
		p.Pool, p.MarginAsset = *in.Pool, *in.Pool
	}
	if in.MarginType != nil {
		p.MarginType = exchanges.MarginType(*in.MarginType)
	}
	set(&p.Size, in.Size)
	set(&p.EntryPrice, in.Entry)
	set(&p.MarkPrice, in.Mark)
	set(&p.LiquidationPrice, in.Liq)
	set(&p.Leverage, in.Leverage)
	set(&p.MaintMargin, in.MaintMargin)
	set(&p.IsolatedWallet, in.IsolatedWallet)
	set(&p.FundingRate, in.FundingRate)
	if in.FundingInterval != nil {
		p.FundingInterval = *in.FundingInterval
	}
	if in.Stops != nil {
		p.Stops = p.Stops[:0:0]
		for _, s := range *in.Stops {
			p.Stops = append(p.Stops, exchanges.Stop{Trigger: s.Trigger, Quantity: s.Quantity, ClosePosition: s.ClosePosition, Trailing: s.Trailing})
		}
	}
	p.Notional = math.Abs(p.Size) * p.MarkPrice
	p.UnrealizedPnL = (p.MarkPrice - p.EntryPrice) * math.Abs(p.Size) * p.Side.Sign()
	set(&p.UnrealizedPnL, in.UnrealizedPnL)
}

// snapshot returns the account at now as an exchange adapter would hand
// it to the watcher, with the step's one-off events and transfers.
func (a *account) snapshot(s *Step, now time.Time, seq *int) *exchanges.Snapshot {
	snap := &exchanges.Snapshot{
		Time:      now,
		Balances:  slices.Clone(a.balances),
		Positions: slices.Clone(a.positions),
	}
	for i := range snap.Positions {
		p := &snap.Positions[i]
		if p.Pool == "" && len(snap.Balances) == 1 {
			p.Pool, p.MarginAsset = snap.Balances[0].Asset, snap.Balances[0].Asset
		}
	}
	if s == nil {
		return snap
	}
	for _, ev := range s.Events {
		*seq++
		snap.Events = append(snap.Events, exchanges.Event{ID: fmt.Sprint("test-", *seq), Kind: exchanges.EventKind(ev.Kind),
			Time: now, Symbol: ev.Symbol, Side: exchanges.Side(ev.Side), Message: ev.Message})
	}
	for _, tr := range s.Transfers {
		*seq++
		snap.Transfers = append(snap.Transfers, exchanges.Transfer{ID: fmt.Sprint("test-", *seq), Pool: tr.Pool, Amount: tr.Amount, Time: now})
	}
	return snap
}
