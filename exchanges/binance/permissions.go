package binance

import (
	"context"
	"fmt"
	"strings"

	"github.com/marginwatch/marginwatch/exchanges"
)

// apiRestrictions is GET /sapi/v1/account/apiRestrictions. go-binance's
// APIKeyPermission lacks some of the trading flags, so the adapter reads
// the body itself.
type apiRestrictions struct {
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

// trading lists the trading permissions the key holds.
func (r *apiRestrictions) trading() []string {
	var on []string
	for _, p := range []struct {
		on   bool
		name string
	}{
		{r.EnableFutures, "Enable Futures"},
		{r.EnableSpotAndMarginTrading, "Enable Spot & Margin Trading"},
		{r.EnableMargin, "Enable Margin Loan, Repay & Transfer"},
		{r.EnableVanillaOptions, "Enable European Options"},
		{r.EnablePortfolioMarginTrading, "Enable Portfolio Margin Trading"},
		{r.EnableFixAPITrade, "FIX API trading"},
	} {
		if p.on {
			on = append(on, p.name)
		}
	}
	return on
}

// CheckKey asks Binance for the key's permissions (GET
// /sapi/v1/account/apiRestrictions on the spot API, or on endpoint when it
// is set) and refuses a key that can withdraw, or trade unless
// allow_trading_key is set. The errors wrap exchanges.ErrPermanent and say
// how to fix the key. On testnet, which has no such endpoint, it only checks
// that the key can read the account.
func (e *Exchange) CheckKey(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	if e.spotBase == "" {
		e.log.Info("testnet: Binance's testnet has no key-permission endpoint; checking that the key can read the account only")
		if e.kind == USDM {
			return e.do(ctx, "GET /fapi/v1/positionSide/dual", func(ctx context.Context) error {
				_, err := e.fc.NewGetPositionModeService().Do(ctx)
				return err
			})
		}
		return e.do(ctx, "GET /dapi/v1/positionSide/dual", func(ctx context.Context) error {
			_, err := e.dc.NewGetPositionModeService().Do(ctx)
			return err
		})
	}
	var r apiRestrictions
	err := e.do(ctx, "GET /sapi/v1/account/apiRestrictions", func(ctx context.Context) error {
		return e.get(ctx, e.spotBase, "/sapi/v1/account/apiRestrictions", nil, true, &r)
	})
	if err != nil {
		return fmt.Errorf("account %s: checking the API key's permissions: %w", e.name, err)
	}
	if r.EnableWithdrawals {
		return fmt.Errorf("account %s: the API key can withdraw funds; marginwatch needs a read-only key: create one with only \"Enable Reading\" in Binance API Management: %w", e.name, exchanges.ErrPermanent)
	}
	if t := r.trading(); len(t) > 0 && !e.allowTrading {
		return fmt.Errorf("account %s: the API key can trade (%s); marginwatch needs a read-only key: create one with only \"Enable Reading\" in Binance API Management, or set allow_trading_key: true on this account to accept the risk: %w", e.name, strings.Join(t, ", "), exchanges.ErrPermanent)
	}
	if !r.EnableReading {
		return fmt.Errorf("account %s: the API key cannot read the account: turn on \"Enable Reading\" for it in Binance API Management: %w", e.name, exchanges.ErrPermanent)
	}
	return nil
}
