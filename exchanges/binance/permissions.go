package binance

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
)

// apiRestrictions is GET /sapi/v1/account/apiRestrictions. go-binance's
// APIKeyPermission lacks some of the trading flags, so the adapter reads
// the body itself.
type apiRestrictions struct {
	IPRestrict                   bool `json:"ipRestrict"`
	EnableReading                bool `json:"enableReading"`
	EnableWithdrawals            bool `json:"enableWithdrawals"`
	EnableInternalTransfer       bool `json:"enableInternalTransfer"`
	PermitsUniversalTransfer     bool `json:"permitsUniversalTransfer"`
	EnableMargin                 bool `json:"enableMargin"`
	EnableFutures                bool `json:"enableFutures"`
	EnableVanillaOptions         bool `json:"enableVanillaOptions"`
	EnableSpotAndMarginTrading   bool `json:"enableSpotAndMarginTrading"`
	EnablePortfolioMarginTrading bool `json:"enablePortfolioMarginTrading"`
	EnableFixAPITrade            bool `json:"enableFixApiTrade"`
}

// permission is one flag of apiRestrictions, named as Binance API
// Management shows it (and, for the transfer flags, as the API does).
type permission struct {
	on   bool
	name string
	kind permissionKind
}

type permissionKind int

const (
	readOrWithdraw permissionKind = iota // judged one by one
	trade
	// transfer: moving funds between accounts; a stolen key could empty
	// the futures wallet into a sub-account.
	transfer
	other
)

// all is every flag, in a fixed order (changes compares two of them).
func (r *apiRestrictions) all() []permission {
	return []permission{
		{r.EnableReading, "Enable Reading", readOrWithdraw},
		{r.EnableWithdrawals, "Enable Withdrawals", readOrWithdraw},
		{r.PermitsUniversalTransfer, "Permits Universal Transfer (permitsUniversalTransfer)", transfer},
		{r.EnableInternalTransfer, "Enable Internal Transfer (enableInternalTransfer)", transfer},
		{r.EnableFutures, "Enable Futures", trade},
		{r.EnableSpotAndMarginTrading, "Enable Spot & Margin Trading", trade},
		{r.EnableMargin, "Enable Margin Loan, Repay & Transfer", trade},
		{r.EnableVanillaOptions, "Enable European Options", trade},
		{r.EnablePortfolioMarginTrading, "Enable Portfolio Margin Trading", trade},
		{r.EnableFixAPITrade, "FIX API trading", trade},
		{r.IPRestrict, "Restrict access to trusted IPs only", other},
	}
}

// held lists the names of the permissions of kind the key holds.
func (r *apiRestrictions) held(kind permissionKind) []string {
	var on []string
	for _, p := range r.all() {
		if p.on && p.kind == kind {
			on = append(on, p.name)
		}
	}
	return on
}

// changes describes how r differs from old ("Enable Futures turned on, …"),
// "" when it does not.
func (r *apiRestrictions) changes(old *apiRestrictions) string {
	var out []string
	was, now := old.all(), r.all()
	for i := range now {
		switch {
		case now[i].on && !was[i].on:
			out = append(out, now[i].name+" turned on")
		case !now[i].on && was[i].on:
			out = append(out, now[i].name+" turned off")
		}
	}
	return strings.Join(out, ", ")
}

// judge returns why marginwatch refuses a key with permissions r (a
// refusal: it wraps exchanges.ErrPermanent and ends with how to fix it),
// or nil.
func (e *Exchange) judge(r *apiRestrictions) error {
	const fix = "marginwatch needs a read-only key: create one with only \"Enable Reading\" in Binance API Management"
	if r.EnableWithdrawals {
		return refuse("the API key can withdraw funds; %s", fix)
	}
	t, m := r.held(trade), r.held(transfer)
	if len(t)+len(m) > 0 && !e.allowTrading {
		var can []string
		if len(t) > 0 {
			can = append(can, "trade ("+strings.Join(t, ", ")+")")
		}
		if len(m) > 0 {
			can = append(can, "transfer funds ("+strings.Join(m, ", ")+")")
		}
		return refuse("the API key can %s; %s, or set allow_trading_key: true on this account to accept the risk", strings.Join(can, " and "), fix)
	}
	if !r.EnableReading {
		return refuse("the API key cannot read the account: turn on \"Enable Reading\" for it in Binance API Management")
	}
	return nil
}

// CheckKey asks Binance for the key's permissions (GET
// /sapi/v1/account/apiRestrictions on the spot API, or on endpoint when it
// is set) and refuses a key that can withdraw, or trade or transfer funds
// unless allow_trading_key is set. The errors wrap exchanges.ErrPermanent
// and say how to fix the key; any other error is transient. On testnet,
// which has no such endpoint, it only checks that the key can read the
// account.
func (e *Exchange) CheckKey(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	if err := e.checkKey(ctx); err != nil {
		return fmt.Errorf("account %s: %w", e.name, err)
	}
	return nil
}

// checkKey is CheckKey with e.mu held. A refused key is also reported as a
// key_problem (once) and by KeyProblem; an accepted one marks the key
// checked.
func (e *Exchange) checkKey(ctx context.Context) error {
	if e.spotBase == "" {
		e.log.Info("testnet: Binance's testnet has no key-permission endpoint; checking that the key can read the account only")
		var err error
		if e.kind == USDM {
			err = e.do(ctx, "GET /fapi/v1/positionSide/dual", func(ctx context.Context) error {
				_, err := e.fc.NewGetPositionModeService().Do(ctx)
				return err
			})
		} else {
			err = e.do(ctx, "GET /dapi/v1/positionSide/dual", func(ctx context.Context) error {
				_, err := e.dc.NewGetPositionModeService().Do(ctx)
				return err
			})
		}
		e.checked = err == nil
		return err
	}
	r, err := e.readPermissions(ctx)
	if err != nil {
		return fmt.Errorf("checking the API key's permissions: %w", err)
	}
	e.perms, e.permAt = r, e.now()
	if err := e.judge(r); err != nil {
		e.refuse(err, "")
		return err
	}
	e.accept()
	e.checked = true
	return nil
}

// recheckKey reads the permissions again when permEvery has passed since
// the last read. A change raises a key_problem event saying what changed;
// permissions marginwatch refuses are reported by KeyProblem until they
// go, while polling goes on. Only a rejected key or the caller giving up
// fails the Snapshot: after any other failure the check is tried again a
// minute later.
func (e *Exchange) recheckKey(ctx context.Context) error {
	now := e.now()
	if e.spotBase == "" || now.Sub(e.permAt) < e.permEvery {
		return nil
	}
	r, err := e.readPermissions(ctx)
	if err != nil {
		var ke *KeyError
		if errors.As(err, &ke) || ctx.Err() != nil {
			return fmt.Errorf("checking the API key's permissions: %w", err)
		}
		e.log.Warn("API key permissions not re-checked; trying again in a minute", "err", err)
		e.permAt = now.Add(time.Minute - e.permEvery)
		return nil
	}
	old := e.perms
	e.perms, e.permAt = r, now
	var what string
	if old != nil {
		what = r.changes(old)
	}
	if err := e.judge(r); err != nil {
		e.refuse(err, what)
		return nil
	}
	e.accept()
	if what != "" {
		e.queue(e.keyEvent(now, "the API key's permissions changed: "+what))
	}
	return nil
}

// readPermissions reads GET /sapi/v1/account/apiRestrictions.
func (e *Exchange) readPermissions(ctx context.Context) (*apiRestrictions, error) {
	var r apiRestrictions
	err := e.do(ctx, "GET /sapi/v1/account/apiRestrictions", func(ctx context.Context) error {
		return e.get(ctx, e.spotBase, "/sapi/v1/account/apiRestrictions", nil, true, &r)
	})
	if err != nil {
		return nil, err
	}
	return &r, nil
}

// refuse records that the key has permissions marginwatch refuses (why),
// raising a key_problem when that is new or the permissions changed (what).
func (e *Exchange) refuse(why error, what string) {
	now := e.now()
	err := fmt.Errorf("account %s: %w", e.name, why)
	e.evMu.Lock()
	fresh := e.permErr == nil
	e.permErr = err
	e.evMu.Unlock()
	switch {
	case what != "":
		e.queue(e.keyEvent(now, "the API key's permissions changed: "+what+"; "+why.Error()))
	case fresh:
		e.queue(e.keyEvent(now, why.Error()))
	}
}

// accept clears a refusal.
func (e *Exchange) accept() {
	e.evMu.Lock()
	defer e.evMu.Unlock()
	e.permErr = nil
}

// keyEvent is a key_problem event about the key's permissions.
func (e *Exchange) keyEvent(now time.Time, msg string) exchanges.Event {
	msg = "account " + e.name + ": " + msg
	return exchanges.Event{
		ID:      fmt.Sprintf("%s/key_permissions/%d", e.name, now.UnixMilli()),
		Kind:    exchanges.KeyProblem,
		Time:    now,
		Message: msg,
	}
}
