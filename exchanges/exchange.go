// Package exchanges defines the normalized account snapshot that every
// exchange adapter produces and the Exchange interface they implement.
//
// Data flows one way: an Exchange returns a Snapshot; the watcher turns it
// into metrics, rules and alerts. An exchange never imports rules, alerts or
// notifiers.
package exchanges

import (
	"context"
	"errors"
	"time"
)

// Exchange is one watched account on one exchange.
//
// Snapshot returns one consistent, normalized view of the account: every
// balance and every open position, with the market data the risk metrics need.
// It must honour ctx: when ctx is done it returns promptly with ctx.Err().
//
// Errors: a failed Snapshot never yields a partial snapshot. An error that
// wraps ErrPermanent (an invalid or revoked key, a key with forbidden
// permissions) will not heal by retrying and needs the user; any other error
// (network, 5xx, rate limit, malformed response) is transient and the caller
// keeps polling. Error strings never contain keys or secrets.
//
// Close releases connections and background goroutines; Snapshot must not be
// called after Close.
type Exchange interface {
	Snapshot(ctx context.Context) (*Snapshot, error)
	Close() error
}

// ErrPermanent marks errors that retrying cannot fix (see Exchange).
var ErrPermanent = errors.New("permanent exchange error")

// Side is the direction of a position.
type Side string

// Position sides. In hedge mode one symbol can hold both.
const (
	Long  Side = "long"
	Short Side = "short"
)

// Sign is +1 for long and -1 for short.
func (s Side) Sign() float64 {
	if s == Short {
		return -1
	}
	return 1
}

// MarginType is how a position is margined.
type MarginType string

// Margin types, lower case as Binance's positionRisk reports them.
const (
	Cross    MarginType = "cross"
	Isolated MarginType = "isolated"
)

// Snapshot is one poll of one account.
type Snapshot struct {
	// Time is when the data was read (exchange time where known).
	Time time.Time
	// Inverse is true for coin-margined (COIN-M) accounts, whose money figures
	// are in the margin coin.
	Inverse bool
	// Balances holds one Balance per margin pool, named by its Asset:
	// COIN-M one per margin coin; USDⓈ-M single-asset mode one per margin
	// asset, from the account's per-asset rows (USDT, USDC, …: Binance's
	// total* fields count USDT only); USDⓈ-M multi-assets mode one pool
	// "USD" from the account totals. Every Position names its pool.
	Balances []Balance
	// Positions holds every open position (size != 0).
	Positions []Position
	// Events are occurrences since the previous Snapshot (margin calls,
	// liquidations, key problems). Each is reported once.
	Events []Event
	// Transfers are the money movements into or out of the pools that are
	// not trading (deposits, withdrawals, transfers between wallets,
	// bonuses) since the previous Snapshot, each reported once (by ID), so
	// that drawdown measures trading losses only.
	Transfers []Transfer
}

// Transfer is one non-trading money movement of a pool.
type Transfer struct {
	// ID identifies it so that it is applied once.
	ID string
	// Pool is the Balance.Asset it moved into or out of.
	Pool string
	// Amount is positive into the pool, negative out of it.
	Amount float64
	Time   time.Time
}

// Balance is the account totals for one margin asset, as Binance defines them.
type Balance struct {
	Asset string
	// WalletBalance is totalWalletBalance (USDⓈ-M) or walletBalance (COIN-M).
	WalletBalance float64
	// UnrealizedPnL of all positions in this asset.
	UnrealizedPnL float64
	// MarginBalance = WalletBalance + UnrealizedPnL: the equity.
	MarginBalance float64
	// MaintMargin is the maintenance margin of all positions (cross and isolated).
	MaintMargin float64
	// AvailableBalance is what can still be used to open positions or withdraw.
	AvailableBalance float64
	// CrossWalletBalance and CrossUnPnL exclude isolated positions' wallets and
	// PnL; CrossMaintMargin is the maintenance margin of the cross positions
	// only. Their ratio CrossMaintMargin / (CrossWalletBalance + CrossUnPnL) is
	// the margin ratio the Binance app shows (1.0 = liquidation).
	CrossWalletBalance float64
	CrossUnPnL         float64
	CrossMaintMargin   float64
	// FundingPaid24h is the funding paid over the last 24 hours (positive =
	// paid, negative = received). NaN when the exchange could not tell.
	FundingPaid24h float64
}

// Position is one open position. Sizes and notionals are absolute values;
// Side carries the direction.
type Position struct {
	Symbol      string
	Side        Side
	MarginAsset string
	// Pool is the Asset of the Balance this position's margin comes from:
	// its MarginAsset, or "USD" in USDⓈ-M multi-assets mode.
	Pool       string
	MarginType MarginType
	// Size is the absolute position size: base quantity (USDⓈ-M) or number of
	// contracts (COIN-M).
	Size float64
	// ContractSize is the value of one contract in quote currency (COIN-M
	// only, e.g. 100 USD for BTCUSD); 0 elsewhere.
	ContractSize     float64
	EntryPrice       float64
	MarkPrice        float64
	LiquidationPrice float64 // 0 when the exchange reports none
	Leverage         float64
	// Notional is |size| × mark (USDⓈ-M) or |contracts| × contract size / mark
	// (COIN-M), in the margin asset.
	Notional      float64
	UnrealizedPnL float64
	MaintMargin   float64
	// IsolatedWallet is the margin held by an isolated position (0 for cross).
	IsolatedWallet float64
	// FundingRate is the current predicted funding rate per interval;
	// FundingInterval is the funding interval (usually 8h); 0 means 8h,
	// a negative one that the venue could not tell (the annualised
	// funding is then unknown).
	FundingRate     float64
	FundingInterval time.Duration
	NextFundingTime time.Time
	// Stops are the stop-loss orders resting on the closing side of this
	// position (reduce-only or close-position in one-way mode; in hedge mode
	// the side that closes this position side), regular, algo/conditional,
	// trailing and position-level alike. Take-profits are not stops. Which
	// of them can fire before liquidation is the metrics' business.
	Stops []Stop
	// Candles are recent closed 1h candles, oldest first, for ATR(14). Several
	// positions on one symbol may share the slice: treat it as read-only.
	Candles []Candle
}

// Stop is one stop-loss order protecting a position.
type Stop struct {
	// Trigger is the price at which it fires: its stop price; for a
	// trailing stop the latest price at which it fires once armed (its
	// activation price ∓ callback; an adapter does not report a trailing
	// stop the market has not armed yet), or without an activation price
	// the price at which it would fire from the current mark (mark ∓
	// callback).
	Trigger float64
	// Quantity it closes, in the position's size unit (ignored when
	// ClosePosition).
	Quantity float64
	// ClosePosition: it closes the whole position, whatever its size.
	ClosePosition bool
	// Trailing marks a trailing stop.
	Trailing bool
}

// Candle is one closed OHLC candle.
type Candle struct {
	OpenTime         time.Time
	High, Low, Close float64
}

// EventKind names an account event. The names are the `event:` values of
// event rules.
type EventKind string

// Event kinds.
const (
	MarginCall  EventKind = "margin_call"
	Liquidation EventKind = "liquidation"
	KeyProblem  EventKind = "key_problem"
)

// Event is something that happened once on the account.
type Event struct {
	// ID identifies the occurrence so that it is reported once.
	ID      string
	Kind    EventKind
	Time    time.Time
	Symbol  string // optional
	Side    Side   // optional
	Message string // human-readable detail, never a secret
}

// KeyChecker is implemented by exchanges whose API keys carry permissions.
// The daemon calls CheckKey once at start, before the first poll, and refuses
// to run when it returns an error: such an error wraps ErrPermanent and says
// what is wrong with the key and how to fix it (for example a key that can
// withdraw funds, or can trade without allow_trading_key). It never contains
// the key or the secret.
type KeyChecker interface {
	CheckKey(ctx context.Context) error
}

// EventSource is implemented by exchanges that can notice events while a
// Snapshot fails. A failed Snapshot yields no Snapshot, so it cannot carry
// Snapshot.Events; an invalid or revoked key, for instance, makes every
// Snapshot fail with an error wrapping ErrPermanent. Such an exchange queues
// the event (a key_problem, once per occurrence: it is not queued again until
// a Snapshot has succeeded in between) and the daemon drains the queue with
// PendingEvents after every failed Snapshot and evaluates the events as it
// would evaluate Snapshot.Events. A successful Snapshot also moves any queued
// events into its Events, so nothing is reported twice or lost.
type EventSource interface {
	PendingEvents() []Event
}

// Ban is a rate-limit ban an exchange imposed (Binance: HTTP 429 or 418 with
// Retry-After): nothing may be sent to Host before Until.
type Ban struct {
	Host   string    `json:"host"`
	Status int       `json:"status"`
	Until  time.Time `json:"until"`
}

// BanKeeper is implemented by exchanges that obey bans, so that the daemon
// can persist them and honour them after a restart: a restarted daemon that
// hammered a banned IP would only lengthen the ban (Binance escalates 418
// bans up to 3 days).
//
// Bans returns the bans in force now (Until in the future), for the daemon
// to store after a poll; RestoreBans hands back what was stored, before the
// first request. Bans already over are ignored.
type BanKeeper interface {
	Bans() []Ban
	RestoreBans([]Ban)
}

// KeyHealth is implemented by exchanges whose API key can go bad while the
// daemon runs. KeyProblem returns what is wrong with the key now (rejected or
// revoked, or permissions changed to ones marginwatch refuses), saying how to
// fix it and never containing the key, or nil while the key is fine. The
// daemon's /healthz reports it until it clears.
type KeyHealth interface {
	KeyProblem() error
}
