package bybit

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bybitapi "github.com/hirokisan/bybit/v2"

	"github.com/marginwatch/marginwatch/exchanges"
)

// apiKeyInfo is what GET /v5/user/query-api says about the key. readOnly
// decides whether it can write: the permission lists name product scopes
// (Bybit's own example has readOnly 1 with trade scopes listed).
type apiKeyInfo struct {
	readOnly int
	// scopes are the permission lists by group, in a fixed order.
	scopes   [][2]string // {group, comma-joined permissions}
	withdraw bool        // Wallet holds "Withdraw"
}

func keyInfoOf(r *bybitapi.V5ApiKeyResult) *apiKeyInfo {
	p := r.Permissions
	groups := []struct {
		name string
		list []string
	}{
		{"ContractTrade", p.ContractTrade}, {"Spot", p.Spot}, {"Wallet", p.Wallet}, {"Options", p.Options},
		{"Derivatives", p.Derivatives}, {"CopyTrading", p.CopyTrading}, {"BlockTrade", p.BlockTrade},
		{"Exchange", p.Exchange}, {"NFT", p.Nft},
	}
	k := &apiKeyInfo{readOnly: r.ReadOnly, withdraw: slices.Contains(p.Wallet, "Withdraw")}
	for _, g := range groups {
		k.scopes = append(k.scopes, [2]string{g.name, strings.Join(g.list, ",")})
	}
	return k
}

// writes names the scopes a writable key holds ("ContractTrade: Order,
// Position; Wallet: AccountTransfer").
func (k *apiKeyInfo) writes() string {
	var out []string
	for _, s := range k.scopes {
		if s[1] != "" {
			out = append(out, s[0]+": "+s[1])
		}
	}
	if len(out) == 0 {
		return "no scope listed"
	}
	return strings.Join(out, "; ")
}

// changes describes how k differs from old, "" when it does not.
func (k *apiKeyInfo) changes(old *apiKeyInfo) string {
	var out []string
	if k.readOnly != old.readOnly {
		out = append(out, fmt.Sprintf("readOnly %d → %d", old.readOnly, k.readOnly))
	}
	for i := range k.scopes {
		if i < len(old.scopes) && k.scopes[i][1] != old.scopes[i][1] {
			out = append(out, fmt.Sprintf("%s [%s] → [%s]", k.scopes[i][0], old.scopes[i][1], k.scopes[i][1]))
		}
	}
	return strings.Join(out, ", ")
}

// judge returns why marginwatch refuses the key (a refusal wrapping
// ErrPermanent, ending with the fix), or nil.
func (e *Exchange) judge(k *apiKeyInfo) error {
	const fix = "marginwatch needs a read-only key: create one with \"Read-Only\" selected in Bybit API Management"
	if k.withdraw {
		return refuse("the API key has the Wallet permission \"Withdraw\" (it can withdraw funds); %s", fix)
	}
	if k.readOnly != 1 && !e.allowTrading {
		return refuse("the API key is not read-only (readOnly %d: it can trade or transfer funds with %s); %s, or set allow_trading_key: true on this account to accept the risk", k.readOnly, k.writes(), fix)
	}
	return nil
}

// CheckKey reads the key's permissions (GET /v5/user/query-api) and
// refuses a key that can withdraw, or one that is not read-only unless
// allow_trading_key is set; see exchanges.KeyChecker.
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

// checkKey is CheckKey with e.mu held.
func (e *Exchange) checkKey(ctx context.Context) error {
	k, err := e.readKey(ctx)
	if err != nil {
		return fmt.Errorf("checking the API key's permissions: %w", err)
	}
	e.perms, e.permAt = k, e.now()
	if err := e.judge(k); err != nil {
		e.refuseKey(err, "")
		return err
	}
	e.accept()
	e.checked = true
	return nil
}

// recheckKey reads the permissions again every permEvery. A change raises
// key_problem; a key now refused is reported by KeyProblem while polling
// goes on. Only a rejected key or the caller giving up fails the Snapshot.
func (e *Exchange) recheckKey(ctx context.Context) error {
	now := e.now()
	if now.Sub(e.permAt) < e.permEvery {
		return nil
	}
	k, err := e.readKey(ctx)
	if err != nil {
		var ke *KeyError
		if errors.As(err, &ke) || ctx.Err() != nil {
			return fmt.Errorf("account %s: checking the API key's permissions: %w", e.name, err)
		}
		e.log.Warn("API key permissions not re-checked; trying again in a minute", "err", err)
		e.permAt = now.Add(time.Minute - e.permEvery)
		return nil
	}
	old := e.perms
	e.perms, e.permAt = k, now
	var what string
	if old != nil {
		what = k.changes(old)
	}
	if err := e.judge(k); err != nil {
		e.refuseKey(err, what)
		return nil
	}
	e.accept()
	if what != "" {
		e.queue(e.keyEvent(now, "the API key's permissions changed: "+what))
	}
	return nil
}

func (e *Exchange) readKey(ctx context.Context) (*apiKeyInfo, error) {
	var r *bybitapi.V5APIKeyResponse
	err := e.do(ctx, "GET /v5/user/query-api", func(c *bybitapi.Client) (err error) {
		r, err = c.V5().User().GetAPIKey()
		return err
	})
	if err != nil {
		return nil, err
	}
	return keyInfoOf(&r.Result), nil
}

// refuseKey records a refused key (why), raising key_problem when that is
// new or the permissions changed (what).
func (e *Exchange) refuseKey(why error, what string) {
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

func (e *Exchange) accept() {
	e.evMu.Lock()
	defer e.evMu.Unlock()
	e.permErr = nil
}

func (e *Exchange) keyEvent(now time.Time, msg string) exchanges.Event {
	return exchanges.Event{
		ID:      fmt.Sprintf("%s/key_permissions/%d", e.name, now.UnixMilli()),
		Kind:    exchanges.KeyProblem,
		Time:    now,
		Message: "account " + e.name + ": " + msg,
	}
}
