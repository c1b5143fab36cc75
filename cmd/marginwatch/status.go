package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"time"

	"github.com/marginwatch/marginwatch/watcher"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

// statusTimeout bounds one account's poll in `status`.
const statusTimeout = 30 * time.Second

// statusJSON is the `status -json` document (SPEC.md). Every metric of a
// scope is present; null means "not defined for this target" (no
// liquidation price, a cross position's own margin ratio, no drawdown history
// in a one-off poll) or infinite (equity at or below zero: SPEC shows
// effective_leverage, net_exposure_ratio and size_pct_equity as null then).
type statusJSON struct {
	// Source is "daemon" for the running daemon's live view (its admin
	// API), "poll" for status's own one-off poll.
	Source   string        `json:"source"`
	Accounts []accountJSON `json:"accounts"`
	// Silences are the daemon's silences in force or to come (mute
	// windows' occurrences included); absent in a one-off poll.
	Silences []silenceJSON `json:"silences,omitzero"`
	// via is the daemon's address, or why status polled itself; for the
	// table's first line.
	via string
	// restating names the rules whose summary is the engine's default, a
	// restatement of the comparison the table already shows.
	restating map[string]bool
}

type accountJSON struct {
	Name     string `json:"name"`
	Exchange string `json:"exchange"`
	// Pool is the asset of a single-pool account's money ("" with several
	// pools, see Assets).
	Pool    string      `json:"pool,omitempty"`
	Time    *time.Time  `json:"time,omitempty"`
	Error   string      `json:"error,omitempty"`
	Metrics metricsJSON `json:"metrics"`
	// Assets lists the margin pools of an account with several (SPEC:
	// money metrics per pool); a single-pool account has them in Metrics.
	Assets    []assetJSON    `json:"assets,omitempty"`
	Positions []positionJSON `json:"positions"`
	Firing    []rules.Hit    `json:"firing"`
	// Alerts are the daemon's alerts of the account with their lifecycle
	// state; absent in a one-off poll, which has no history.
	Alerts []alertJSON `json:"alerts,omitzero"`
	// Infinite names the metrics that are null because they are infinite
	// (leverage at equity ≤ 0), with their sign, so that a reader of the
	// JSON (status asking the daemon) can tell ∞ from undefined.
	Infinite map[string]int `json:"infinite,omitempty"`
}

type assetJSON struct {
	Asset    string         `json:"asset"`
	Metrics  metricsJSON    `json:"metrics"`
	Infinite map[string]int `json:"infinite,omitempty"`
}

type positionJSON struct {
	Symbol   string         `json:"symbol"`
	Side     string         `json:"side"`
	Metrics  metricsJSON    `json:"metrics"`
	Infinite map[string]int `json:"infinite,omitempty"`
	// Size is in contracts or coins, as the exchange counts them.
	Size float64 `json:"size,omitempty"`
}

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("status", stderr)
	asJSON := fs.Bool("json", false, "print JSON with every metric")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cfg, compiled, err := load(configPath(*path))
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailure
	}
	// status never opens the state database: it must work while the daemon
	// holds it. The daemon's view has the history (drawdown) and the alert
	// states; without a daemon, a one-off poll is the next best thing.
	doc, err := askDaemon(cfg.Listen, daemonTimeout)
	if err != nil {
		doc = pollAll(cfg, compiled, err)
	}
	doc.restating = restating(cfg.Rules)
	code := exitOK
	for _, aj := range doc.Accounts {
		if aj.Error != "" {
			fmt.Fprintf(stderr, "account %s: %s\n", aj.Name, aj.Error)
			code = exitFailure
		}
	}
	if *asJSON {
		if err := writeStatus(stdout, doc); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailure
		}
		return code
	}
	// NO_COLOR (no-color.org) turns colours off even on a terminal.
	printStatus(stdout, doc, time.Now(), isTerminal(stdout) && os.Getenv("NO_COLOR") == "")
	return code
}

// restating names the rules without a summary of their own: theirs is
// the engine's default, which restates the comparison.
func restating(rs []config.Rule) map[string]bool {
	m := make(map[string]bool)
	for _, r := range rs {
		if r.Summary == "" {
			m[r.Name] = true
		}
	}
	return m
}

// pollAll polls every account once; why is why the daemon was not asked.
func pollAll(cfg *config.Config, compiled []*rules.Rule, why error) statusJSON {
	doc := statusJSON{Source: sourcePoll, Accounts: []accountJSON{}, via: why.Error()}
	for _, a := range cfg.Accounts {
		doc.Accounts = append(doc.Accounts, pollOnce(a, compiled))
	}
	return doc
}

func pollOnce(a config.Account, compiled []*rules.Rule) accountJSON {
	aj := accountJSON{Name: a.Name, Exchange: a.Exchange, Metrics: metricsJSON{}, Positions: []positionJSON{}, Firing: []rules.Hit{}}
	ex, err := watcher.NewExchange(a, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		aj.Error = err.Error()
		return aj
	}
	defer ex.Close()
	ctx, cancel := context.WithTimeout(context.Background(), statusTimeout)
	defer cancel()
	snap, err := ex.Snapshot(ctx)
	if err != nil {
		aj.Error = fmt.Sprintf("poll: %v", err)
		return aj
	}
	now := time.Now()
	acct := metrics.Compute(a.Name, a.Exchange, a.Labels, snap, nil, now)
	t := snap.Time
	aj.Time = &t
	fillAccount(&aj, acct, compiled, now)
	return aj
}

// fillAccount puts acct's metrics and the rules that would fire on it into aj.
func fillAccount(aj *accountJSON, acct *metrics.Account, compiled []*rules.Rule, now time.Time) {
	fillMetrics(aj, acct)
	aj.Firing = append(aj.Firing, rules.FiringNow(compiled, acct, now)...)
}

// fillMetrics puts acct's metrics into aj: the one conversion the poll and
// the daemon's view share.
func fillMetrics(aj *accountJSON, acct *metrics.Account) {
	aj.Metrics = metricMap(&acct.Metrics, metrics.AccountScope)
	aj.Pool = acct.Pool
	for i := range acct.Assets {
		aj.Assets = append(aj.Assets, assetJSON{Asset: acct.Assets[i].Asset, Metrics: metricMap(&acct.Assets[i].Metrics, metrics.PoolScope)})
	}
	for i := range acct.Positions {
		p := &acct.Positions[i]
		pj := positionJSON{Symbol: p.Symbol, Side: string(p.Side), Metrics: metricMap(&p.Metrics, metrics.PositionScope)}
		if p.Raw != nil {
			pj.Size = p.Raw.Size
		}
		aj.Positions = append(aj.Positions, pj)
	}
}

// metricsJSON is one target's metrics by name, nil where undefined. An
// infinite value stays in the map (the table prints it) and is written as
// null, which SPEC asks for and without which encoding/json would refuse
// the whole document.
type metricsJSON map[string]*float64

func (m metricsJSON) MarshalJSON() ([]byte, error) {
	out := make(map[string]*float64, len(m))
	for k, v := range m {
		if v != nil && (math.IsInf(*v, 0) || math.IsNaN(*v)) {
			v = nil
		}
		out[k] = v
	}
	return json.Marshal(out)
}

// infinite returns m's infinite metrics with their signs, nil when none.
func (m metricsJSON) infinite() map[string]int {
	var inf map[string]int
	for k, v := range m {
		if v != nil && math.IsInf(*v, 0) {
			if inf == nil {
				inf = map[string]int{}
			}
			inf[k] = 1
			if *v < 0 {
				inf[k] = -1
			}
		}
	}
	return inf
}

// restore puts the infinite metrics inf named back into m (read from JSON).
func (m metricsJSON) restore(inf map[string]int) {
	for k, sign := range inf {
		if _, ok := m[k]; ok && sign != 0 {
			v := math.Inf(sign)
			m[k] = &v
		}
	}
}

// markInfinite fills the Infinite fields of doc from its metrics, before
// it is written.
func markInfinite(doc *statusJSON) {
	eachMetrics(doc, func(m metricsJSON, inf *map[string]int) { *inf = m.infinite() })
}

// restoreInfinite puts the infinities doc's Infinite fields name back into
// its metrics, after it was read.
func restoreInfinite(doc *statusJSON) {
	eachMetrics(doc, func(m metricsJSON, inf *map[string]int) { m.restore(*inf) })
}

// eachMetrics calls f with every metrics map of doc (accounts, pools,
// positions) and its Infinite field.
func eachMetrics(doc *statusJSON, f func(m metricsJSON, inf *map[string]int)) {
	for i := range doc.Accounts {
		a := &doc.Accounts[i]
		f(a.Metrics, &a.Infinite)
		for j := range a.Assets {
			f(a.Assets[j].Metrics, &a.Assets[j].Infinite)
		}
		for j := range a.Positions {
			f(a.Positions[j].Metrics, &a.Positions[j].Infinite)
		}
	}
}

// metricMap lists every metric of scope, nil where s has no value.
func metricMap(s *metrics.Set, scope metrics.Scope) metricsJSON {
	m := make(metricsJSON)
	for _, id := range metrics.All() {
		if id.Info().Scopes&scope == 0 {
			continue
		}
		if v, ok := s.Get(id); ok {
			m[id.String()] = &v
		} else {
			m[id.String()] = nil
		}
	}
	return m
}
