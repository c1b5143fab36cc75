package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"time"

	"github.com/marginwatch/marginwatch/notifiers"
	"github.com/marginwatch/marginwatch/watcher"
	"github.com/marginwatch/marginwatch/watcher/metrics"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/silence"
)

// Where a status document comes from (its "source").
const (
	sourceDaemon = "daemon"
	sourcePoll   = "poll"
)

// statusPath is the admin API's live view.
const statusPath = "/api/v1/status"

// daemonTimeout bounds asking the daemon: it answers from memory, so a
// daemon that takes longer is wedged, and the poll is the better answer.
const daemonTimeout = 2 * time.Second

// maxStatusBytes bounds the daemon's answer that status reads.
const maxStatusBytes = 16 << 20

// alertJSON is one of the daemon's alerts and its lifecycle state.
type alertJSON struct {
	// ID names the incident once it fires; a pending alert has none.
	ID     string `json:"id,omitempty"`
	Rule   string `json:"rule"`
	Symbol string `json:"symbol,omitempty"`
	Side   string `json:"side,omitempty"`
	// State is "pending", "firing", or for a firing alert "silenced" (a
	// silence or mute window withholds its notices: SilencedBy names it)
	// or "acked" (its repeats stop until the severity rises).
	State    string             `json:"state"`
	Severity notifiers.Severity `json:"severity"`
	Since    time.Time          `json:"since"`
	StartsAt *time.Time         `json:"starts_at,omitempty"`
	LastSent *time.Time         `json:"last_sent,omitempty"`
	// Value and Threshold are null when infinite (see metricsJSON).
	Value     *float64 `json:"value"`
	Threshold *float64 `json:"threshold"`
	// SilencedBy is the ID of the silence withholding the alert's notices.
	SilencedBy string     `json:"silenced_by,omitempty"`
	AckedAt    *time.Time `json:"acked_at,omitempty"`
	AckedBy    string     `json:"acked_by,omitempty"`
	AckComment string     `json:"ack_comment,omitempty"`
}

// writeStatus writes doc as `status -json` prints it and the admin API
// serves it: the one encoder of both.
func writeStatus(w io.Writer, doc statusJSON) error {
	markInfinite(&doc)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// statusHandler serves GET /api/v1/status: the daemon's live view from
// ctl, built at now(). Other methods get 405.
func statusHandler(ctl controller, now func() time.Time) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed: the status is read-only (GET)", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		// A write error is the client gone: headers are out, nothing to say.
		_ = writeStatus(w, daemonDoc(ctl.Status(now()), ctl.Silences()))
	})
}

// daemonDoc is the status document of the daemon's view and silences.
func daemonDoc(view []watcher.AccountStatus, silences []silence.Silence) statusJSON {
	doc := statusJSON{Source: sourceDaemon, Accounts: make([]accountJSON, 0, len(view)), Silences: silencesOf(silences)}
	for _, as := range view {
		aj := accountJSON{Name: as.Name, Exchange: as.Exchange, Metrics: metricsJSON{}, Positions: []positionJSON{},
			Firing: append([]rules.Hit{}, as.Firing...), Alerts: []alertJSON{}}
		switch {
		case as.Latest == nil:
			aj.Error = "no data yet: the daemon has not read this account since it started (or since the reload that added it)"
		case as.Latest.Stale:
			aj.Metrics = metricMap(&as.Latest.Metrics, metrics.AccountScope)
			if as.LastSuccess.IsZero() {
				aj.Error = "no fresh data: the daemon's reads of this account fail (its log says why)"
			} else {
				aj.Error = fmt.Sprintf("no fresh data since %s: the daemon's reads of this account fail (its log says why)", as.LastSuccess.UTC().Format(statusTimeLayout))
			}
		default:
			fillMetrics(&aj, as.Latest)
		}
		switch {
		case as.Latest != nil && as.Latest.Stale:
			// A failed read has no time of its own: the last good one's.
			if !as.LastSuccess.IsZero() {
				t := as.LastSuccess
				aj.Time = &t
			}
		case as.Latest != nil && !as.Latest.Time.IsZero():
			t := as.Latest.Time
			aj.Time = &t
		}
		for _, st := range as.Alerts {
			aj.Alerts = append(aj.Alerts, alertOf(st, as.Silenced[st.Key]))
		}
		doc.Accounts = append(doc.Accounts, aj)
	}
	return doc
}

// alertOf is st as the status shows it; silencedBy names the silence
// withholding its notices ("" for none).
func alertOf(st rules.State, silencedBy string) alertJSON {
	a := alertJSON{ID: st.ID, Rule: st.Key.Rule, Symbol: st.Key.Symbol, Side: st.Key.Side, State: string(st.Phase),
		Severity: st.Severity, Since: st.Since, Value: finite(st.Value), Threshold: finite(st.Threshold),
		SilencedBy: silencedBy, AckedBy: st.AckedBy, AckComment: st.AckComment}
	if !st.Acked.IsZero() {
		t := st.Acked
		a.AckedAt = &t
	}
	// Only a firing alert is silenced or acked; a pending one stays
	// pending, silenced_by naming what will withhold it. Silenced wins:
	// nothing of the alert goes out, acked or not.
	if st.Phase == rules.Active {
		switch {
		case silencedBy != "" || st.Muted:
			a.State = "silenced"
		case !st.Acked.IsZero():
			a.State = "acked"
		}
	}
	if !st.StartsAt.IsZero() {
		t := st.StartsAt
		a.StartsAt = &t
	}
	if !st.LastSent.IsZero() {
		t := st.LastSent
		a.LastSent = &t
	}
	return a
}

func finite(v float64) *float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil
	}
	return &v
}

// daemonTransport is how status and the CLI reach their own daemon:
// directly, never through HTTP_PROXY, which would see the admin token
// (Go's proxy rules skip only loopback addresses, not a named listen).
var daemonTransport = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	return t
}()

// errNoListen says why status did not ask a daemon.
var errNoListen = errors.New("`listen` is not set, so there is no daemon to ask")

// askDaemon fetches the running daemon's view from its admin API on listen
// within timeout. The error says briefly why it could not, for status's
// first line.
func askDaemon(listen string, timeout time.Duration) (statusJSON, error) {
	if listen == "" {
		return statusJSON{}, errNoListen
	}
	base := "http://" + dialAddr(listen)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+statusPath, nil)
	if err != nil {
		return statusJSON{}, fmt.Errorf("no daemon asked: listen %q: %w", listen, err)
	}
	client := &http.Client{Timeout: timeout, Transport: daemonTransport}
	resp, err := client.Do(req)
	if err != nil {
		return statusJSON{}, fmt.Errorf("no daemon answered at %s: %s", listen, briefNetError(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// An older daemon without the admin API answers 404.
		return statusJSON{}, fmt.Errorf("the daemon at %s has no live view: %s", listen, resp.Status)
	}
	var doc statusJSON
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxStatusBytes)).Decode(&doc); err != nil || doc.Source != sourceDaemon {
		return statusJSON{}, fmt.Errorf("the daemon at %s answered something else than its live view", listen)
	}
	if doc.Accounts == nil {
		doc.Accounts = []accountJSON{}
	}
	restoreInfinite(&doc)
	doc.via = listen
	return doc, nil
}

// dialAddr is listen as a client reaches it: an unspecified host (":9464",
// "0.0.0.0:9464", "[::]:9464") is this machine's loopback.
func dialAddr(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return listen
	}
	ip := net.ParseIP(host)
	switch {
	case host == "" || (ip != nil && ip.Equal(net.IPv4zero)):
		host = "127.0.0.1"
	case ip != nil && ip.Equal(net.IPv6unspecified):
		host = "::1"
	}
	return net.JoinHostPort(host, port)
}

// briefNetError is err's gist: "connection refused", "timed out", or the
// innermost message.
func briefNetError(err error) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out"
	}
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}
