package main

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/marginwatch/marginwatch/watcher"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/rules"
	"github.com/marginwatch/marginwatch/watcher/silence"
)

// The admin API's control endpoints (SPEC "Control").
const (
	silencesPath = "/api/v1/silences"
	alertsPath   = "/api/v1/alerts/"
)

// maxRequestBytes bounds a write's body: a silence or an ack is a few
// hundred bytes.
const maxRequestBytes = 64 << 10

// controller is what the admin API needs of the daemon; *watcher.Watcher
// is one. Status builds the live view at now; the others are the control
// contract of watcher/control.go: ExpireSilence and Ack wrap
// watcher.ErrNotFound for an unknown ID, AddSilence stores an already
// validated silence. All are safe for concurrent use.
type controller interface {
	Status(now time.Time) []watcher.AccountStatus
	Silences() []silence.Silence
	AddSilence(silence.Silence) (silence.Silence, error)
	ExpireSilence(id string) (silence.Silence, error)
	Ack(id, author, comment string) (rules.State, error)
}

var _ controller = (*watcher.Watcher)(nil)

// writePolicy is who may write: the bearer token when one is configured;
// without one, anybody, but only while listen is loopback-only (config
// refuses any other listen without a token). host is the listen's host
// ("" for every interface), a Host the API answers besides loopback
// (guardAPI).
type writePolicy struct {
	token    string
	loopback bool
	host     string
}

// policyOf is the write policy of cfg's admin token and listen.
func policyOf(cfg *config.Config) writePolicy {
	host, _, _ := net.SplitHostPort(cfg.Listen)
	return writePolicy{token: cfg.Admin.Token.Reveal(), loopback: config.IsLoopbackListen(cfg.Listen), host: host}
}

// allow reports whether r may write, and if not, why (never quoting what
// the client sent: it may be most of the real token).
func (p writePolicy) allow(r *http.Request) (bool, string) {
	if p.token == "" {
		if p.loopback {
			return true, ""
		}
		return false, "writes need admin.token_file when listen is not loopback-only"
	}
	h := r.Header.Get("Authorization")
	scheme, given, ok := strings.Cut(h, " ")
	if h == "" {
		return false, "no Authorization header: send Authorization: Bearer <admin token>"
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return false, "the Authorization header is not a bearer token: send Authorization: Bearer <admin token>"
	}
	// The token as it is, blanks and all, as the CLI sends what it read
	// from the same file. Hashing first makes the comparison's time
	// independent of the lengths too.
	a, b := sha256.Sum256([]byte(given)), sha256.Sum256([]byte(p.token))
	if subtle.ConstantTimeCompare(a[:], b[:]) != 1 {
		return false, "wrong admin token: use the one in admin.token_file"
	}
	return true, ""
}

// controlAPI serves the silences and acks of the admin API.
type controlAPI struct {
	ctl    controller
	policy func() writePolicy
	log    *slog.Logger
	now    func() time.Time
}

// routes adds the control endpoints to mux (Go 1.22 method patterns);
// writes pass the write policy first.
func (api *controlAPI) routes(mux *http.ServeMux) {
	mux.HandleFunc("GET "+silencesPath, api.listSilences)
	mux.HandleFunc("POST "+silencesPath, api.write(api.addSilence))
	mux.HandleFunc("DELETE "+silencesPath+"/{id}", api.write(api.expireSilence))
	mux.HandleFunc("POST "+alertsPath+"{id}/ack", api.write(api.ack))
	// Anything else under /api/v1/ is answered in JSON, not by /metrics'
	// plain-text 404.
	mux.HandleFunc("/api/v1/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no endpoint %s %s: the admin API has GET %s, GET and POST %s, DELETE %s/{id}, POST %s{id}/ack",
			r.Method, r.URL.Path, statusPath, silencesPath, silencesPath, alertsPath))
	})
}

// write refuses a request the write policy does not allow with 401 and a
// log line naming who asked (never the token), and serves it otherwise.
func (api *controlAPI) write(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ok, why := api.policy().allow(r)
		if !ok {
			api.log.Warn("admin API write refused", "reason", why, "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			w.Header().Set("WWW-Authenticate", `Bearer realm="marginwatch"`)
			writeError(w, http.StatusUnauthorized, why)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
		h(w, r)
	}
}

// silencesJSON is GET /api/v1/silences and `silence list -json`.
type silencesJSON struct {
	Silences []silenceJSON `json:"silences"`
}

func (api *controlAPI) listSilences(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, silencesJSON{Silences: silencesOf(api.ctl.Silences())})
}

// silenceRequest is POST /api/v1/silences: matchers as `marginwatch
// silence add` takes them, and either a duration from the start or an end.
type silenceRequest struct {
	Matchers []string   `json:"matchers"`
	Duration string     `json:"duration,omitempty"`
	StartsAt *time.Time `json:"starts_at,omitempty"`
	EndsAt   *time.Time `json:"ends_at,omitempty"`
	Author   string     `json:"author,omitempty"`
	Comment  string     `json:"comment,omitempty"`
}

func (api *controlAPI) addSilence(w http.ResponseWriter, r *http.Request) {
	var req silenceRequest
	if !decodeBody(w, r, &req, false) {
		return
	}
	s, err := req.silence(api.now())
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	stored, err := api.ctl.AddSilence(s)
	if err != nil {
		api.log.Error("cannot add a silence", "err", err)
		writeError(w, http.StatusInternalServerError, "cannot add the silence: "+err.Error())
		return
	}
	// The watcher logs the silence itself.
	w.Header().Set("Location", silencesPath+"/"+stored.ID)
	writeJSON(w, http.StatusCreated, silenceOf(stored))
}

// silence checks the request and builds its silence, starting at now
// unless it says otherwise.
func (req *silenceRequest) silence(now time.Time) (silence.Silence, error) {
	ms, err := silence.ParseMatchers(req.Matchers)
	if err != nil {
		return silence.Silence{}, err
	}
	s := silence.Silence{Matchers: ms, StartsAt: now, Author: strings.TrimSpace(req.Author), Comment: strings.TrimSpace(req.Comment)}
	if req.StartsAt != nil {
		s.StartsAt = *req.StartsAt
	}
	switch {
	case req.Duration != "" && req.EndsAt != nil:
		return silence.Silence{}, errors.New("give duration or ends_at, not both")
	case req.Duration != "":
		d, err := time.ParseDuration(req.Duration)
		if err != nil || d <= 0 {
			return silence.Silence{}, fmt.Errorf("duration %q: want a positive Go duration such as 30m, 2h or 24h", req.Duration)
		}
		s.EndsAt = s.StartsAt.Add(d)
	case req.EndsAt != nil:
		s.EndsAt = *req.EndsAt
	default:
		return silence.Silence{}, errors.New("no duration: give duration (e.g. \"2h\") or ends_at (RFC 3339)")
	}
	if !s.EndsAt.After(now) {
		return silence.Silence{}, fmt.Errorf("the silence would end at %s, which is past", s.EndsAt.UTC().Format(time.RFC3339))
	}
	if err := s.Validate(); err != nil {
		return silence.Silence{}, err
	}
	return s, nil
}

func (api *controlAPI) expireSilence(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if strings.HasPrefix(id, "window:") {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("%s is a mute window of the config: remove or change it under mute_windows and reload", id))
		return
	}
	s, err := api.ctl.ExpireSilence(id)
	if err != nil {
		api.controlError(w, "expire the silence", err)
		return
	}
	writeJSON(w, http.StatusOK, silenceOf(s))
}

// ackRequest is POST /api/v1/alerts/{id}/ack; its body may be empty.
type ackRequest struct {
	Author  string `json:"author,omitempty"`
	Comment string `json:"comment,omitempty"`
}

// ackedJSON is an acknowledged alert and its account.
type ackedJSON struct {
	Account string `json:"account"`
	alertJSON
}

func (api *controlAPI) ack(w http.ResponseWriter, r *http.Request) {
	var req ackRequest
	if !decodeBody(w, r, &req, true) {
		return
	}
	id := r.PathValue("id")
	st, err := api.ctl.Ack(id, strings.TrimSpace(req.Author), strings.TrimSpace(req.Comment))
	if err != nil {
		api.controlError(w, "acknowledge the alert", err)
		return
	}
	writeJSON(w, http.StatusOK, ackedJSON{Account: st.Key.Account, alertJSON: alertOf(st, "")})
}

// controlError answers a failed silence or ack call: 404 for an ID the
// daemon does not know, 409 for an ack of a built-in alert, 500 (and a
// log line) for anything else.
func (api *controlAPI) controlError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, watcher.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
		return
	case errors.Is(err, watcher.ErrNotAckable):
		writeError(w, http.StatusConflict, err.Error())
		return
	}
	api.log.Error("cannot "+what, "err", err)
	writeError(w, http.StatusInternalServerError, "cannot "+what+": "+err.Error())
}

// decodeBody reads r's JSON body into v, strictly (an unknown field is a
// typo to report, not to ignore). It answers 400 (413 past the size
// bound) and returns false on a bad body. emptyOK accepts no body at all.
func decodeBody(w http.ResponseWriter, r *http.Request, v any, emptyOK bool) bool {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("more than one JSON value")
	}
	var tooBig *http.MaxBytesError
	switch {
	case err == nil:
		return true
	case errors.Is(err, io.EOF) && emptyOK:
		return true
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body over %d bytes", tooBig.Limit))
	case errors.Is(err, io.EOF):
		writeError(w, http.StatusBadRequest, "empty request body: send a JSON object")
	default:
		writeError(w, http.StatusBadRequest, "bad request body: "+err.Error())
	}
	return false
}

// writeJSON writes v with code; a write error is the client gone.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// apiError is the admin API's error body.
type apiError struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, apiError{Error: msg})
}

// silenceJSON is a silence as the admin API and `status -json` show it,
// matchers as `silence add` takes them. It is decoded with plain strings,
// so that a client never fails on a matcher a newer daemon accepts.
type silenceJSON struct {
	ID        string    `json:"id"`
	Matchers  []string  `json:"matchers"`
	StartsAt  time.Time `json:"starts_at"`
	EndsAt    time.Time `json:"ends_at"`
	CreatedAt time.Time `json:"created_at,omitzero"`
	Author    string    `json:"author,omitempty"`
	Comment   string    `json:"comment,omitempty"`
	// Window names the config's mute window this is an occurrence of.
	Window string `json:"window,omitempty"`
}

func silenceOf(s silence.Silence) silenceJSON {
	return silenceJSON{ID: s.ID, Matchers: matcherStrings(s.Matchers), StartsAt: s.StartsAt, EndsAt: s.EndsAt,
		CreatedAt: s.CreatedAt, Author: s.Author, Comment: s.Comment, Window: s.Window}
}

func silencesOf(ss []silence.Silence) []silenceJSON {
	out := make([]silenceJSON, 0, len(ss))
	for _, s := range ss {
		out = append(out, silenceOf(s))
	}
	return out
}

func matcherStrings(ms []silence.Matcher) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}
