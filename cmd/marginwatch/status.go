package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"strconv"
	"text/tabwriter"
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
	Accounts []accountJSON `json:"accounts"`
}

type accountJSON struct {
	Name     string      `json:"name"`
	Exchange string      `json:"exchange"`
	Time     *time.Time  `json:"time,omitempty"`
	Error    string      `json:"error,omitempty"`
	Metrics  metricsJSON `json:"metrics"`
	// Assets lists the margin pools of an account with several (SPEC:
	// money metrics per pool); a single-pool account has them in Metrics.
	Assets    []assetJSON    `json:"assets,omitempty"`
	Positions []positionJSON `json:"positions"`
	Firing    []rules.Hit    `json:"firing"`
}

type assetJSON struct {
	Asset   string      `json:"asset"`
	Metrics metricsJSON `json:"metrics"`
}

type positionJSON struct {
	Symbol  string      `json:"symbol"`
	Side    string      `json:"side"`
	Metrics metricsJSON `json:"metrics"`
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
	// holds it, and a one-off poll needs no history.
	doc := statusJSON{Accounts: []accountJSON{}}
	code := exitOK
	for _, a := range cfg.Accounts {
		aj := pollOnce(a, compiled)
		if aj.Error != "" {
			fmt.Fprintf(stderr, "account %s: %s\n", a.Name, aj.Error)
			code = exitFailure
		}
		doc.Accounts = append(doc.Accounts, aj)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(doc); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailure
		}
		return code
	}
	printStatus(stdout, doc)
	return code
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
	aj.Metrics = metricMap(&acct.Metrics, metrics.AccountScope)
	for i := range acct.Assets {
		aj.Assets = append(aj.Assets, assetJSON{Asset: acct.Assets[i].Asset, Metrics: metricMap(&acct.Assets[i].Metrics, metrics.PoolScope)})
	}
	for i := range acct.Positions {
		p := &acct.Positions[i]
		aj.Positions = append(aj.Positions, positionJSON{Symbol: p.Symbol, Side: string(p.Side), Metrics: metricMap(&p.Metrics, metrics.PositionScope)})
	}
	aj.Firing = append(aj.Firing, rules.FiringNow(compiled, acct, now)...)
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

func printStatus(w io.Writer, doc statusJSON) {
	for i, a := range doc.Accounts {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "Account %s (%s)\n", a.Name, a.Exchange)
		if a.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", a.Error)
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		for _, id := range metrics.All() {
			// With several pools the money metrics are the pools'.
			if id.Info().Scopes&metrics.AccountScope != 0 && (len(a.Assets) == 0 || !id.PerPool()) {
				fmt.Fprintf(tw, "  %s\t%s\n", id, num(a.Metrics[id.String()]))
			}
		}
		tw.Flush()
		if len(a.Assets) > 0 {
			fmt.Fprintln(w)
			var cols []string
			for _, id := range metrics.All() {
				if id.Info().Scopes&metrics.PoolScope != 0 {
					cols = append(cols, id.String())
				}
			}
			tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprint(tw, "POOL\t")
			for _, c := range cols {
				fmt.Fprintf(tw, "%s\t", c)
			}
			fmt.Fprintln(tw)
			for _, as := range a.Assets {
				fmt.Fprintf(tw, "%s\t", as.Asset)
				for _, c := range cols {
					fmt.Fprintf(tw, "%s\t", num(as.Metrics[c]))
				}
				fmt.Fprintln(tw)
			}
			tw.Flush()
		}
		if len(a.Positions) > 0 {
			fmt.Fprintln(w)
			cols := []string{"liq_distance_pct", "liq_distance_atr", "leverage", "size_pct_equity", "margin_ratio", "funding_rate", "funding_apr_pct", "funding_next_cost", "unrealized_pnl_pct", "has_stop_loss", "stop_coverage_pct", "stop_distance_pct"}
			tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
			fmt.Fprint(tw, "SYMBOL\tSIDE\t")
			for _, c := range cols {
				fmt.Fprintf(tw, "%s\t", c)
			}
			fmt.Fprintln(tw)
			for _, p := range a.Positions {
				fmt.Fprintf(tw, "%s\t%s\t", p.Symbol, p.Side)
				for _, c := range cols {
					fmt.Fprintf(tw, "%s\t", num(p.Metrics[c]))
				}
				fmt.Fprintln(tw)
			}
			tw.Flush()
		}
		fmt.Fprintln(w)
		if len(a.Firing) == 0 {
			fmt.Fprintln(w, "  No rule would fire now.")
			continue
		}
		fmt.Fprintln(w, "  Would fire now:")
		for _, h := range a.Firing {
			target := ""
			if h.Symbol != "" {
				target = " " + h.Symbol + " " + h.Side
			}
			fmt.Fprintf(w, "    %-8s %s%s: %s\n", h.Severity, h.Rule, target, h.Summary)
		}
	}
}

// num formats a metric for the table: "-" when undefined.
func num(v *float64) string {
	if v == nil {
		return "-"
	}
	return strconv.FormatFloat(*v, 'g', 6, 64)
}
