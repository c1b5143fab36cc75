package hyperliquid

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/watcher/config"
)

// Exchange names and REST bases.
const (
	Name            = "hyperliquid"
	DefaultEndpoint = config.HyperliquidMainnet
	TestnetEndpoint = config.HyperliquidTestnet
)

// Pool is the one margin pool of a Hyperliquid perps account.
const Pool = "USDC"

// fundingInterval: Hyperliquid pays funding every hour.
const fundingInterval = time.Hour

// Options are the adapter's dependencies.
type Options struct {
	// Logger receives warnings about degraded data; nil discards them.
	Logger *slog.Logger
	// Now is the clock for caches, bans and snapshot times; time.Now when nil.
	Now func() time.Time
	// HTTPClient sends the requests; a client with a 30 s timeout when nil.
	HTTPClient *http.Client
}

// Exchange is one Hyperliquid perps account (main dex), read by its public
// address. Snapshot calls are serialized; every method is safe for
// concurrent use.
type Exchange struct {
	name    string
	address string
	base    string // REST base, no trailing slash
	host    string // budget and ban key
	every   time.Duration
	log     *slog.Logger
	now     func() time.Time
	httpc   *http.Client

	mu    sync.Mutex // serializes Snapshot; guards cache
	cache cache

	held atomic.Int64 // coins held at the last Snapshot; -1 before one

	// The stream (stream.go, live.go, wsconn.go).
	wsURL     string
	reconcile time.Duration // reconcile_interval
	streamed  atomic.Bool   // snapshots come every reconcile_interval (Cost)
	sc        streamConf
	st        streamState
	live      liveView
}

var (
	_ exchanges.Exchange  = (*Exchange)(nil)
	_ exchanges.BanKeeper = (*Exchange)(nil)
	_ exchanges.Coster    = (*Exchange)(nil)
)

// New returns the adapter of account cfg (exchange: hyperliquid), which
// config has validated (a 0x address, an endpoint that is https or
// loopback). It sends nothing.
func New(cfg config.Account, opts Options) (*Exchange, error) {
	if cfg.Exchange != Name {
		return nil, fmt.Errorf("account %s: exchange %q is not %s", cfg.Name, cfg.Exchange, Name)
	}
	if cfg.Address == "" {
		return nil, fmt.Errorf("account %s: a hyperliquid account needs its public address (address: \"0x…\"): %w", cfg.Name, exchanges.ErrPermanent)
	}
	base := strings.TrimRight(endpointOf(cfg), "/")
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("account %s: endpoint %q is not a URL like https://api.hyperliquid.xyz: %w", cfg.Name, base, exchanges.ErrPermanent)
	}
	e := &Exchange{
		name:    cfg.Name,
		address: strings.ToLower(cfg.Address),
		base:    base,
		host:    config.HyperliquidHost(cfg),
		every:   cfg.PollInterval,
		log:     opts.Logger,
		now:     opts.Now,
		httpc:   opts.HTTPClient,
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.httpc == nil {
		e.httpc = &http.Client{Timeout: 30 * time.Second}
	}
	e.held.Store(-1)
	e.wsURL, e.reconcile, e.sc = wsURL(base, cfg.StreamEndpoint), cfg.ReconcileInterval, defaultStreamConf()
	e.streamed.Store(cfg.Stream)
	return e, nil
}

// endpointOf is the REST base of a.
func endpointOf(a config.Account) string { return config.HyperliquidEndpoint(a) }

// Close releases nothing: the adapter holds no connection of its own.
func (e *Exchange) Close() error { return nil }

// Snapshot reads the account: clearinghouseState and frontendOpenOrders
// every time (22 weight), the cached reads when due and the gate has room
// (cache.go). A failure of either of the two fails the Snapshot; a failed
// or skipped cached read keeps the last known data. It seeds the live view, and brings the
// events the stream queued since the last Live or Snapshot.
func (e *Exchange) Snapshot(ctx context.Context) (*exchanges.Snapshot, error) {
	snap, err := e.read(ctx)
	if err != nil {
		return nil, err
	}
	snap.Events = e.live.takeEvents()
	return snap, nil
}

// read is one Snapshot that seeds the live view.
func (e *Exchange) read(ctx context.Context) (*exchanges.Snapshot, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	epoch := e.live.beginRead(e.now())
	snap, m, orders, stateTime, err := e.readLocked(ctx)
	if err != nil {
		e.live.abortRead()
		return nil, err
	}
	e.live.seed(snap, m, orders, stateTime, epoch)
	return snap, nil
}

// readLocked is read's work. e.mu is held.
func (e *Exchange) readLocked(ctx context.Context) (*exchanges.Snapshot, mapper, []order, int64, error) {
	now := e.now()
	var st clearinghouseState
	dex := ""
	if err := e.info(ctx, infoRequest{Type: "clearinghouseState", User: e.address, Dex: &dex}, &st, nil); err != nil {
		return nil, mapper{}, nil, 0, err
	}
	var orders []order
	if err := e.info(ctx, infoRequest{Type: "frontendOpenOrders", User: e.address, Dex: &dex}, &orders, nil); err != nil {
		return nil, mapper{}, nil, 0, err
	}
	var coins []string
	for _, ap := range st.AssetPositions {
		if ap.Position.Szi.V != 0 {
			coins = append(coins, ap.Position.Coin)
		}
	}
	// The cached reads never fail the Snapshot: the required reads are in.
	e.refreshMeta(ctx, now, coins)
	e.refreshFunding(ctx, now)
	e.refreshCandles(ctx, now, coins)
	m := e.mapperAt(now)
	snap, err := m.build(&st, orders, now)
	if err != nil {
		return nil, mapper{}, nil, 0, err
	}
	e.held.Store(int64(len(coins)))
	return snap, m, orders, st.Time, nil
}

// mapper is what maps a clearinghouseState onto a Snapshot besides the
// answer itself: the cached market contexts, candles and funding paid.
// Its maps and lists are never written once made (a refresh replaces
// them), so the live view keeps a copy of it between Snapshots.
type mapper struct {
	ctxs        map[string]assetCtx
	candles     map[string][]exchanges.Candle
	fundingPaid float64
}

// mapperAt is the mapper of the cache as it is. e.mu is held.
func (e *Exchange) mapperAt(now time.Time) mapper {
	m := mapper{ctxs: e.cache.ctxs, fundingPaid: e.fundingPaid(now), candles: make(map[string][]exchanges.Candle, len(e.cache.candles))}
	for c, cc := range e.cache.candles {
		m.candles[c] = cc.list
	}
	return m
}

// build maps the answers onto a Snapshot (see doc.go for each field).
func (m *mapper) build(st *clearinghouseState, orders []order, now time.Time) (*exchanges.Snapshot, error) {
	op := "POST /info clearinghouseState"
	if !st.MarginSummary.AccountValue.Set || !st.CrossMarginSummary.AccountValue.Set {
		return nil, fmt.Errorf("%s: the answer has no marginSummary/crossMarginSummary accountValue: is `endpoint` Hyperliquid's REST base?", op)
	}
	snap := &exchanges.Snapshot{Time: now}
	b := exchanges.Balance{
		Asset:            Pool,
		MarginBalance:    st.MarginSummary.AccountValue.V,
		AvailableBalance: st.Withdrawable.or(math.NaN()),
		FundingPaid24h:   m.fundingPaid,
	}
	var crossPnL, crossMM, isoMM float64
	for _, ap := range st.AssetPositions {
		q := &ap.Position
		if !q.Szi.Set || q.Szi.V == 0 {
			continue
		}
		p, err := m.position(q, orders, now)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", op, err)
		}
		b.UnrealizedPnL += p.UnrealizedPnL
		if p.MarginType == exchanges.Isolated {
			isoMM += p.MaintMargin
		} else {
			crossPnL += p.UnrealizedPnL
			crossMM += p.MaintMargin
		}
		snap.Positions = append(snap.Positions, p)
	}
	b.WalletBalance = b.MarginBalance - b.UnrealizedPnL
	// Hyperliquid's own cross maintenance margin; older answers lack it,
	// and then the positions' sum stands in (max leverage from meta).
	b.CrossMaintMargin = st.CrossMaintenanceMarginUsed.or(crossMM)
	b.MaintMargin = b.CrossMaintMargin + isoMM
	b.CrossUnPnL = crossPnL
	b.CrossWalletBalance = st.CrossMarginSummary.AccountValue.V - crossPnL
	snap.Balances = []exchanges.Balance{b}
	return snap, nil
}

// position maps one asset position. Its mark is positionValue / |szi|:
// positionValue is |szi| × mark at the moment of the same answer as
// liquidationPx and unrealizedPnl (unrealizedPnl = szi × (mark − entryPx)
// holds in every sample), so the mark, the liquidation price and the PnL
// agree; metaAndAssetCtxs' markPx only stands in without a positionValue.
func (m *mapper) position(q *position, orders []order, now time.Time) (exchanges.Position, error) {
	size := math.Abs(q.Szi.V)
	side := exchanges.Long
	if q.Szi.V < 0 {
		side = exchanges.Short
	}
	ctx, inMeta := m.ctxs[q.Coin]
	var mark float64
	switch {
	case q.PositionValue.Set && q.PositionValue.V > 0:
		mark = q.PositionValue.V / size
	case inMeta && ctx.mark > 0:
		mark = ctx.mark
	default:
		return exchanges.Position{}, fmt.Errorf("position %s has no positionValue and metaAndAssetCtxs no markPx for it", q.Coin)
	}
	notional := size * mark
	mt := exchanges.Cross
	switch q.Leverage.Type {
	case "isolated":
		mt = exchanges.Isolated
	case "cross", "":
	default:
		return exchanges.Position{}, fmt.Errorf("position %s: unknown leverage type %q", q.Coin, q.Leverage.Type)
	}
	maxLev := q.MaxLeverage.or(0)
	if maxLev <= 0 && inMeta {
		maxLev = ctx.maxLeverage
	}
	mm := math.NaN() // unknown without a max leverage
	if maxLev > 0 {
		mm = notional / (2 * maxLev)
	}
	p := exchanges.Position{
		Symbol:           q.Coin,
		Side:             side,
		MarginAsset:      Pool,
		Pool:             Pool,
		MarginType:       mt,
		Size:             size,
		EntryPrice:       q.EntryPx.or(0),
		MarkPrice:        mark,
		LiquidationPrice: q.LiquidationPx.or(0),
		Leverage:         q.Leverage.Value.or(0),
		Notional:         notional,
		UnrealizedPnL:    q.UnrealizedPnl.or(0),
		MaintMargin:      mm,
		FundingRate:      math.NaN(),
		FundingInterval:  fundingInterval,
		NextFundingTime:  now.Truncate(time.Hour).Add(time.Hour),
		Stops:            stopsFor(q.Coin, side, orders),
		Candles:          m.candles[q.Coin],
	}
	if p.LiquidationPrice < 0 {
		p.LiquidationPrice = 0
	}
	if inMeta && ctx.fundingSet {
		p.FundingRate = ctx.funding
	}
	if mt == exchanges.Isolated {
		// marginUsed is the isolated margin with the PnL in it (rawUsd +
		// szi × mark); the metrics add UnrealizedPnL back, so that the
		// position's margin_ratio is maintenance margin / marginUsed.
		p.IsolatedWallet = q.MarginUsed.or(math.NaN()) - p.UnrealizedPnL
	}
	return p, nil
}

// stopsFor returns the stop-losses among orders that protect coin's
// position on side: Stop Market and Stop Limit triggers that are
// reduce-only or position TP/SL, on the closing side (A sells and closes
// a long, B a short). Take-profits are no stops, and TP/SL children of an
// unfilled entry order (children) protect nothing yet: only top-level
// orders count. A position TP/SL of size 0 closes the whole position.
func stopsFor(coin string, side exchanges.Side, orders []order) []exchanges.Stop {
	closing := "A"
	if side == exchanges.Short {
		closing = "B"
	}
	var out []exchanges.Stop
	for _, o := range orders {
		if o.Coin != coin || !o.IsTrigger || o.Side != closing || !(o.ReduceOnly || o.IsPositionTpsl) {
			continue
		}
		if o.OrderType != "Stop Market" && o.OrderType != "Stop Limit" {
			continue
		}
		s := exchanges.Stop{Trigger: o.TriggerPx.or(0), Quantity: o.Sz.or(0)}
		if o.IsPositionTpsl && s.Quantity == 0 {
			s.ClosePosition = true
		}
		out = append(out, s)
	}
	return out
}
