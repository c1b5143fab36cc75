package config

import (
	"fmt"
	"strings"
	"time"
)

// Config is the whole marginwatch configuration: the main file plus every
// rule file it names. Load fills in defaults, expands ${VAR}, reads every
// *_file secret into its plain field and validates everything.
type Config struct {
	StateDir string `yaml:"state_dir"`
	Listen   string `yaml:"listen"`
	// HeartbeatURL is pinged after every successful cycle (dead man's switch).
	HeartbeatURL     Secret `yaml:"heartbeat_url"`
	HeartbeatURLFile string `yaml:"heartbeat_url_file"`

	Defaults  Defaults   `yaml:"defaults"`
	Accounts  []Account  `yaml:"accounts"`
	Notifiers []Notifier `yaml:"notifiers"`
	RuleFiles []string   `yaml:"rule_files"`
	Rules     []Rule     `yaml:"rules"`
	Digests   []Digest   `yaml:"digests"`
	// Mutes is `mute_windows:` as written; MuteWindows parses them.
	Mutes []MuteWindow `yaml:"mute_windows"`
	Admin Admin        `yaml:"admin"`

	// Path is the file the config was loaded from; Files lists it and every
	// rule file read, for reload watching, and Sums their SHA-256 as read,
	// so that an edit made after the load is told apart exactly (file
	// times are too coarse for that).
	Path  string              `yaml:"-"`
	Files []string            `yaml:"-"`
	Sums  map[string][32]byte `yaml:"-"`
	At    Location            `yaml:"-"`

	// warned holds the warnings found while loading (a rule_files glob
	// matching nothing, a secret file others can read); Warnings adds them.
	warned []Warning
	// hlPolled are the hyperliquid accounts whose stream: true was turned
	// off at load (limitHyperliquidStreams).
	hlPolled []string
}

// Defaults apply to every account that does not set its own value.
type Defaults struct {
	PollInterval time.Duration `yaml:"poll_interval"` // default 15s
	StaleAfter   time.Duration `yaml:"stale_after"`   // default 60s
	At           Location      `yaml:"-"`
}

// Account is one watched exchange account. After Load, PollInterval and
// StaleAfter are set (from Defaults when the account leaves them out) and
// APIKey/APISecret hold the secrets whether given inline or as files.
type Account struct {
	Name     string `yaml:"name"`
	Exchange string `yaml:"exchange"` // binance-usdm | binance-coinm | bybit | hyperliquid | simulated
	// Address is a Hyperliquid account's public address (0x and 40 hex
	// digits); Hyperliquid needs no key.
	Address           string        `yaml:"address"`
	APIKey            Secret        `yaml:"api_key"`
	APIKeyFile        string        `yaml:"api_key_file"`
	APISecret         Secret        `yaml:"api_secret"`
	APISecretFile     string        `yaml:"api_secret_file"`
	Testnet           bool          `yaml:"testnet"`
	Endpoint          string        `yaml:"endpoint"`
	StreamEndpoint    string        `yaml:"stream_endpoint"`
	Stream            bool          `yaml:"stream"`
	ReconcileInterval time.Duration `yaml:"reconcile_interval"` // default 5m
	PollInterval      time.Duration `yaml:"poll_interval"`
	StaleAfter        time.Duration `yaml:"stale_after"`
	AllowTradingKey   bool          `yaml:"allow_trading_key"`
	// PermissionCheckInterval is how often the key's permissions are read
	// again while running; a change raises key_problem. Default 1h.
	PermissionCheckInterval time.Duration     `yaml:"permission_check_interval"`
	Labels                  map[string]string `yaml:"labels"`
	Scenario                string            `yaml:"scenario"` // simulated only: crash | funding-spike | calm
	At                      Location          `yaml:"-"`
}

// Notifier is one delivery channel. Which fields apply depends on Type
// (console, slack, telegram, email, webhook); Load rejects fields that do not
// belong to the type.
type Notifier struct {
	Name string `yaml:"name"`
	Type string `yaml:"type"`

	// slack: webhook mode (WebhookURL) or bot mode (Token + Channel).
	WebhookURL     Secret `yaml:"webhook_url"`
	WebhookURLFile string `yaml:"webhook_url_file"`
	Channel        string `yaml:"channel"`
	// slack bot mode and telegram.
	Token     Secret `yaml:"token"`
	TokenFile string `yaml:"token_file"`
	APIURL    string `yaml:"api_url"`

	// telegram
	ChatID          string `yaml:"chat_id"`
	MessageThreadID int    `yaml:"message_thread_id"`
	SilentWarnings  bool   `yaml:"silent_warnings"`
	// Commands: the bot answers /status, /mute … from chat_id (default
	// true after Load; control/telegramctl).
	Commands bool `yaml:"commands"`

	// email
	SMTP         string   `yaml:"smtp"` // host:port
	TLS          string   `yaml:"tls"`  // starttls (default) | implicit | none
	Username     string   `yaml:"username"`
	Password     Secret   `yaml:"password"`
	PasswordFile string   `yaml:"password_file"`
	From         string   `yaml:"from"`
	To           []string `yaml:"to"`

	// webhook
	URL        Secret `yaml:"url"`
	URLFile    string `yaml:"url_file"`
	Secret     Secret `yaml:"secret"`
	SecretFile string `yaml:"secret_file"`

	// delivery, every type
	Timeout time.Duration `yaml:"timeout"` // one attempt; default 10s
	MaxAge  time.Duration `yaml:"max_age"` // give up after; default 1h

	At Location `yaml:"-"`
}

// Rule is one alerting rule as written. After Load: Scope is set (default
// "position" for position-only metrics, else "account"), Repeat has an entry
// for every severity the rule can fire with, and SendResolved defaults to true.
type Rule struct {
	Name   string `yaml:"name"`
	Scope  string `yaml:"scope"` // account | position | event
	Metric string `yaml:"metric"`
	// Above and Below map a severity name (info, warning, critical) to its
	// threshold; a rule has exactly one of them (threshold rules) or Event
	// and Severity (event rules).
	Above    map[string]float64 `yaml:"above"`
	Below    map[string]float64 `yaml:"below"`
	Event    string             `yaml:"event"`
	Severity string             `yaml:"severity"`
	// Hysteresis is how far the value must come back past a threshold to
	// step down or resolve; see Condition.HysteresisFor for the default.
	Hysteresis float64 `yaml:"hysteresis"`
	// Any replaces Metric, Above/Below and Hysteresis by a list of
	// conditions on the same target: the rule fires when any of them holds,
	// at the highest severity any gives, as one alert (see Conditions).
	Any    []Condition              `yaml:"any"`
	For    time.Duration            `yaml:"for"`
	Repeat map[string]time.Duration `yaml:"repeat"` // a single duration in YAML sets every severity
	// KeepFiringFor keeps a firing alert at its severity this long after
	// its condition last held (Prometheus keep_firing_for).
	KeepFiringFor time.Duration `yaml:"keep_firing_for"`
	// Window is the span a drawdown_pct rule takes the equity peak over
	// (rolling; default 24h). `window: day` sets Daily instead (Window 0):
	// the peak since the last daily reset at ResetAt ("HH:MM", default
	// "00:00") in Timezone (IANA, default "UTC").
	Window       time.Duration     `yaml:"window"`
	Daily        bool              `yaml:"-"`
	ResetAt      string            `yaml:"reset_at"`
	Timezone     string            `yaml:"timezone"`
	Notify       []string          `yaml:"notify"`
	Accounts     []string          `yaml:"accounts"`
	Symbols      []string          `yaml:"symbols"`
	SendResolved bool              `yaml:"send_resolved"`
	Summary      string            `yaml:"summary"`
	Runbook      string            `yaml:"runbook"`
	Labels       map[string]string `yaml:"labels"`
	At           Location          `yaml:"-"`
}

// Condition is one condition of a rule's `any:` list, or the rule's own
// metric, above/below and hysteresis (see Rule.Conditions).
type Condition struct {
	Metric     string             `yaml:"metric"`
	Above      map[string]float64 `yaml:"above"`
	Below      map[string]float64 `yaml:"below"`
	Hysteresis float64            `yaml:"hysteresis"`
	At         Location           `yaml:"-"`
}

// Digest is a scheduled summary.
type Digest struct {
	Name     string   `yaml:"name"`
	Schedule string   `yaml:"schedule"` // cron, CRON_TZ= prefix allowed
	Notify   []string `yaml:"notify"`
	Accounts []string `yaml:"accounts"`
	At       Location `yaml:"-"`
}

// Secret is a string that never prints itself: fmt, logs and JSON see
// "<secret>". Use Reveal to get the value.
type Secret string

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "<secret>"
}

// GoString keeps %#v from printing the value.
func (s Secret) GoString() string { return s.String() }

// MarshalText keeps encoders from printing the value.
func (s Secret) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Pos is a position in a YAML file (1-based).
type Pos struct {
	Line, Col int
}

// Location is where a config element was written: its file, its field path
// (e.g. "rules[2]") and the position of the element and of each of its keys.
type Location struct {
	File string
	Path string
	Pos  Pos
	// Keys maps a key written in this element to the position of its value.
	Keys map[string]Pos
}

// Errorf returns an error about field (a key of this element, or "" for the
// element itself), positioned at that key when it was written.
func (l Location) Errorf(field, format string, args ...any) *Error {
	e := &Error{File: l.File, Pos: l.Pos, Path: l.Path, Msg: fmt.Sprintf(format, args...)}
	if field != "" {
		if l.Path != "" {
			e.Path = l.Path + "." + field
		} else {
			e.Path = field
		}
		if p, ok := l.Keys[field]; ok {
			e.Pos = p
		}
	}
	return e
}

// Error is one problem in a config or rule file, printed as
// "file:line:col: field.path: message" (":col" is left out when unknown;
// "field.path: " when the problem is the file's).
type Error struct {
	File string
	Pos  Pos
	Path string
	Msg  string
}

func (e *Error) Error() string { return format(e.File, e.Pos, "", e.Path, e.Msg) }

// format writes "file:line:col: tag: path: msg", leaving out what is unknown.
func format(file string, pos Pos, tag, path, msg string) string {
	var b strings.Builder
	b.WriteString(file)
	if pos.Line > 0 {
		fmt.Fprintf(&b, ":%d", pos.Line)
		// A column can be unknown (yaml.v3 reports lines only; syntaxColumn
		// guesses one where it can).
		if pos.Col > 0 {
			fmt.Fprintf(&b, ":%d", pos.Col)
		}
	}
	b.WriteString(": ")
	if tag != "" {
		b.WriteString(tag)
		b.WriteString(": ")
	}
	if path != "" {
		b.WriteString(path)
		b.WriteString(": ")
	}
	b.WriteString(msg)
	return b.String()
}

// Errors is every problem found, one per line, in file order.
type Errors []*Error

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}
