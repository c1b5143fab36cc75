package config

import (
	"fmt"
	"maps"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"golang.org/x/crypto/sha3"
)

// DataStaleRule is the name of the built-in rule raised when an account has
// had no fresh data for stale_after; user rules cannot take it. The rules
// package compiles that rule under this name.
const DataStaleRule = "data-stale"

// The daemon's alerts about itself: their rule names and the account they
// are filed under are reserved, so no user rule or account can be mistaken
// for them (their states share the store with the rules').
const (
	NotifierFailingRule    = "notifier-failing"
	ConfigReloadFailedRule = "config-reload-failed"
	SelfAccount            = "marginwatch"
)

var (
	exchangeNames = []string{"binance-usdm", "binance-coinm", "bybit", "hyperliquid", "simulated"}
	scenarioNames = []string{"crash", "funding-spike", "calm"}
	notifierTypes = []string{"console", "slack", "telegram", "email", "webhook"}
	eventNames    = []string{"margin_call", "liquidation", "key_problem"}
	scopeNames    = []string{"account", "position", "event"}
	tlsModes      = []string{"starttls", "implicit", "none"}

	ruleNameRE  = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
	labelNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	chatIDRE    = regexp.MustCompile(`^(-?[0-9]+|@[A-Za-z][A-Za-z0-9_]{3,})$`)
)

// notifierFields lists the keys each notifier type takes besides name, type,
// timeout and max_age.
var notifierFields = map[string][]string{
	"console":  nil,
	"slack":    {"webhook_url", "webhook_url_file", "channel", "token", "token_file", "api_url"},
	"telegram": {"token", "token_file", "api_url", "chat_id", "message_thread_id", "silent_warnings", "commands"},
	"email":    {"smtp", "tls", "username", "password", "password_file", "from", "to"},
	"webhook":  {"url", "url_file", "secret", "secret_file"},
}

var reflectTypeNotifier = reflect.TypeFor[Notifier]()

var commonNotifierFields = []string{"name", "type", "timeout", "max_age"}

// oneOf formats choices as "a, b or c"; no choices is "none".
func oneOf(choices []string) string {
	switch len(choices) {
	case 0:
		return "none"
	case 1:
		return choices[0]
	}
	return strings.Join(choices[:len(choices)-1], ", ") + " or " + choices[len(choices)-1]
}

// unknownChoice is the message for a value not among choices.
func unknownChoice(c *collector, what, value string, choices []string) string {
	if s := c.suggest(value, choices); s != "" {
		return fmt.Sprintf("unknown %s %q (did you mean %q?)", what, value, s)
	}
	return fmt.Sprintf("unknown %s %q (use %s)", what, value, oneOf(choices))
}

func num(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

// validate checks every invariant of a decoded config.
func validate(cfg *Config, c *collector) {
	l := cfg.At
	if cfg.StateDir == "" {
		c.add(l.Errorf("state_dir", "must not be empty: the directory for marginwatch's database, e.g. %s", DefaultStateDir))
	}
	if cfg.Listen != "" {
		if err := checkHostPort(cfg.Listen); err != nil {
			c.add(l.Errorf("listen", "%q %v (e.g. %s; \"\" disables the admin API)", cfg.Listen, err, DefaultListen))
		}
	}
	if cfg.HeartbeatURL != "" {
		checkURL(l, "heartbeat_url", cfg.HeartbeatURL.Reveal(), true, c, "http", "https")
	}
	checkIntervals(cfg.Defaults.At, cfg.Defaults.PollInterval, cfg.Defaults.StaleAfter, c)

	accounts := make(map[string]Location)
	for i := range cfg.Accounts {
		a := &cfg.Accounts[i]
		validateAccount(a, c)
		if a.Name == "" {
			continue
		}
		if a.Name == SelfAccount {
			c.add(a.At.Errorf("name", "%q is reserved for marginwatch's alerts about itself; name the account after the exchange or desk, e.g. \"main\"", a.Name))
			continue
		}
		if first, dup := accounts[a.Name]; dup {
			c.add(a.At.Errorf("name", "duplicate account name %q (also %s at line %d); account names must be unique", a.Name, first.Path, first.Pos.Line))
			continue
		}
		accounts[a.Name] = a.At
	}

	notifiers := make(map[string]Location)
	for i := range cfg.Notifiers {
		n := &cfg.Notifiers[i]
		validateNotifier(n, c)
		if n.Name == "" {
			continue
		}
		if first, dup := notifiers[n.Name]; dup {
			c.add(n.At.Errorf("name", "duplicate notifier name %q (also %s at line %d); notifier names must be unique", n.Name, first.Path, first.Pos.Line))
			continue
		}
		notifiers[n.Name] = n.At
	}
	checkTelegramBots(cfg.Notifiers, c)

	validateRules(cfg.Rules, c)
	notifierNames, accountNames := sortedKeys(notifiers), sortedKeys(accounts)
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		checkRefs(r.At, "notify", r.Notify, "notifier", notifiers, notifierNames, c)
		checkRefs(r.At, "accounts", r.Accounts, "account", accounts, accountNames, c)
	}

	digests := make(map[string]Location)
	for i := range cfg.Digests {
		d := &cfg.Digests[i]
		validateDigest(d, c)
		checkRefs(d.At, "notify", d.Notify, "notifier", notifiers, notifierNames, c)
		checkRefs(d.At, "accounts", d.Accounts, "account", accounts, accountNames, c)
		if d.Name == "" {
			continue
		}
		if first, dup := digests[d.Name]; dup {
			c.add(d.At.Errorf("name", "duplicate digest name %q (also %s at line %d); digest names must be unique", d.Name, first.Path, first.Pos.Line))
			continue
		}
		digests[d.Name] = d.At
	}
	validateMuteWindows(cfg.Mutes, c)
}

// sortedKeys returns the keys of m, sorted.
func sortedKeys(m map[string]Location) []string {
	return slices.Sorted(maps.Keys(m))
}

// maxListedNames bounds the names an "unknown name" error lists.
const maxListedNames = 20

// listNames formats names as "a, b, c", the first maxListedNames of them.
func listNames(names []string) string {
	if len(names) <= maxListedNames {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:maxListedNames], ", "), len(names)-maxListedNames)
}

// checkRefs reports names in list (the key field of l) that are not among
// known, whose keys, sorted, are names.
func checkRefs(l Location, field string, list []string, what string, known map[string]Location, names []string, c *collector) {
	if l.written(field) && len(list) == 0 {
		c.add(l.Errorf(field, "is empty: list %s names, or remove %s to mean every %s", what, field, what))
		return
	}
	for i, name := range list {
		if _, ok := known[name]; ok {
			continue
		}
		f := fmt.Sprintf("%s[%d]", field, i)
		switch s := c.suggest(name, names); {
		case len(names) == 0:
			c.add(l.Errorf(f, "unknown %s %q: no %ss are configured", what, name, what))
		case s != "":
			c.add(l.Errorf(f, "unknown %s %q (did you mean %q?)", what, name, s))
		default:
			c.add(l.Errorf(f, "unknown %s %q (configured: %s)", what, name, listNames(names)))
		}
	}
}

// checkName reports an empty name or one with whitespace.
func checkName(l Location, what, name, example string, c *collector) {
	switch {
	case name == "":
		c.add(l.Errorf("name", "is required: a short unique name for this %s, e.g. %q", what, example))
	case strings.ContainsFunc(name, unicode.IsSpace):
		c.add(l.Errorf("name", "%q contains whitespace; use e.g. %q", name, strings.Join(strings.Fields(name), "-")))
	}
}

// checkIntervals checks a poll_interval/stale_after pair.
func checkIntervals(l Location, poll, stale time.Duration, c *collector) {
	if poll < time.Second {
		c.add(l.Errorf("poll_interval", "%v is too short: poll at most once a second (1s or more), exchanges rate-limit", poll))
		return
	}
	if stale <= poll {
		c.add(l.Errorf("stale_after", "%v must be longer than poll_interval (%v), or data would count as stale between two polls; raise stale_after", stale, poll))
	}
}

func checkHostPort(s string) error {
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("is not host:port")
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("has a bad port %q, not a number up to 65535", port)
	}
	return nil
}

// secretGiven reports whether the secret key (or its key_file form) was
// written, and reports a written but empty value (often an empty ${VAR}).
// A value that failed to decode counts as given: its error is already out.
func secretGiven(l Location, key string, val Secret, c *collector) bool {
	if l.written(key) {
		if val == "" {
			c.add(l.Errorf(key, "is empty (an empty environment variable?); give the secret, or remove the key"))
		}
		return true
	}
	return l.written(key + "_file")
}

// checkURL reports a value that is not an absolute URL with one of schemes,
// and says whether it is one. A secret value is never quoted back.
func checkURL(l Location, field, value string, secret bool, c *collector, schemes ...string) bool {
	u, err := url.Parse(value)
	if err == nil && slices.Contains(schemes, u.Scheme) && u.Host != "" {
		return true
	}
	var eg string
	switch schemes[0] {
	case "ws":
		eg = "ws://127.0.0.1:8080"
	default:
		eg = "https://example.com/path"
	}
	what := strings.Join(schemes, " or ")
	if secret {
		c.add(l.Errorf(field, "is not an absolute %s URL (e.g. %s)", what, eg))
		return false
	}
	c.add(l.Errorf(field, "%q is not an absolute %s URL (e.g. %s)", value, what, eg))
	return false
}

// checkClearText refuses an exchange endpoint (a valid absolute URL) that
// talks in clear text to another machine: the API key and the account's
// data would cross the network readable by anyone on the path. secure is
// the scheme to use instead (https, wss).
func checkClearText(l Location, field, value, secure string, c *collector) {
	u, err := url.Parse(value)
	if err != nil || u.Scheme == secure || isLoopbackHost(u.Hostname()) {
		return
	}
	c.add(l.Errorf(field, "%q is plain %s to another machine: the API key and the account's data would cross the network in clear text; use %s://, or plain %s only to this machine (127.0.0.1, ::1 or localhost, e.g. a local test server or a TLS-terminating proxy)", value, u.Scheme, secure, u.Scheme))
}

// isLoopbackHost reports whether host (a name or an IP address without
// port or brackets) is this machine: localhost, 127.0.0.0/8 or ::1. Other
// names are not resolved: what a name resolves to can change.
func isLoopbackHost(host string) bool {
	if strings.EqualFold(strings.TrimSuffix(host, "."), "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}

func validateAccount(a *Account, c *collector) {
	l := a.At
	checkName(l, "account", a.Name, "main", c)
	// (An unknown exchange gets its own error; a second about address would
	// only be noise.)
	if a.Exchange != "hyperliquid" && slices.Contains(exchangeNames, a.Exchange) && l.written("address") {
		c.add(l.Errorf("address", "only a hyperliquid account is read by its address; remove it, or set exchange: hyperliquid"))
	}
	switch a.Exchange {
	case "binance-usdm", "binance-coinm", "bybit":
		env := "BINANCE"
		if a.Exchange == "bybit" {
			env = "BYBIT"
		}
		if !secretGiven(l, "api_key", a.APIKey, c) {
			c.add(l.Errorf("api_key", "is required for a %s account: set api_key (e.g. ${%s_API_KEY}) or api_key_file to a read-only API key", a.Exchange, env))
		}
		if !secretGiven(l, "api_secret", a.APISecret, c) {
			c.add(l.Errorf("api_secret", "is required for a %s account: set api_secret (e.g. ${%s_API_SECRET}) or api_secret_file", a.Exchange, env))
		}
		if l.written("scenario") {
			c.add(l.Errorf("scenario", "only a simulated account takes a scenario; remove it, or set exchange: simulated"))
		}
	case "hyperliquid":
		validateHyperliquid(a, c)
	case "simulated":
		if !l.written("scenario") {
			c.add(l.Errorf("scenario", "is required for a simulated account: %s", oneOf(scenarioNames)))
		} else if !slices.Contains(scenarioNames, a.Scenario) {
			c.add(l.Errorf("scenario", "%s", unknownChoice(c, "scenario", a.Scenario, scenarioNames)))
		}
		for _, k := range []string{"api_key", "api_key_file", "api_secret", "api_secret_file"} {
			if l.written(k) {
				c.add(l.Errorf(k, "a simulated account needs no keys; remove %s", k))
			}
		}
	case "":
		c.add(l.Errorf("exchange", "is required: %s", oneOf(exchangeNames)))
	default:
		c.add(l.Errorf("exchange", "%s", unknownChoice(c, "exchange", a.Exchange, exchangeNames)))
	}
	checkIntervals(l, a.PollInterval, a.StaleAfter, c)
	if a.ReconcileInterval <= 0 {
		c.add(l.Errorf("reconcile_interval", "must be more than 0 (e.g. 5m): how often a streaming account is re-read over REST"))
	}
	if a.PermissionCheckInterval < MinPermissionCheckInterval {
		c.add(l.Errorf("permission_check_interval", "%v is too short: check the API key's permissions at most once a minute (1m or more; the default 1h is plenty), every check spends request weight the exchange rate-limits", a.PermissionCheckInterval))
	}
	if a.Endpoint != "" && checkURL(l, "endpoint", a.Endpoint, false, c, "http", "https") {
		checkClearText(l, "endpoint", a.Endpoint, "https", c)
	}
	if a.StreamEndpoint != "" && checkURL(l, "stream_endpoint", a.StreamEndpoint, false, c, "ws", "wss") {
		checkClearText(l, "stream_endpoint", a.StreamEndpoint, "wss", c)
	}
	checkLabels(l, a.Labels, c)
}

// checkLabels reports label names that would not survive as Prometheus-style
// labels in alerts and webhook payloads.
func checkLabels(l Location, labels map[string]string, c *collector) {
	for k := range labels {
		if !labelNameRE.MatchString(k) {
			c.add(l.Errorf("labels."+k, "label name %q: use letters, digits and _, not starting with a digit", k))
		}
	}
}

func validateNotifier(n *Notifier, c *collector) {
	l := n.At
	checkName(l, "notifier", n.Name, "ops", c)
	fields, known := notifierFields[n.Type]
	switch {
	case n.Type == "":
		c.add(l.Errorf("type", "is required: %s", oneOf(notifierTypes)))
	case !known:
		c.add(l.Errorf("type", "%s", unknownChoice(c, "notifier type", n.Type, notifierTypes)))
	default:
		for _, f := range fieldsOf(reflectTypeNotifier) {
			if !l.written(f.name) || slices.Contains(commonNotifierFields, f.name) || slices.Contains(fields, f.name) {
				continue
			}
			takes := "only name, type, timeout and max_age"
			if len(fields) > 0 {
				takes = strings.Join(fields, ", ") + ", timeout and max_age"
			}
			c.add(l.Errorf(f.name, "not a field of a %s notifier (a %s notifier takes %s)", n.Type, n.Type, takes))
		}
	}
	switch n.Type {
	case "slack":
		hook, token := secretGiven(l, "webhook_url", n.WebhookURL, c), secretGiven(l, "token", n.Token, c)
		switch {
		case hook && token:
			c.add(l.Errorf("token", "webhook_url and token are two ways to post: use webhook_url (webhook mode) or token + channel (bot mode), not both"))
		case !hook && !token:
			c.add(l.Errorf("webhook_url", "is required: a Slack incoming-webhook URL, or token + channel for bot mode"))
		case token && n.Channel == "":
			c.add(l.Errorf("channel", "is required with token (bot mode): the channel to post to, e.g. C0123456789"))
		case hook && n.Channel != "":
			c.add(l.Errorf("channel", "is for bot mode (token + channel); a webhook posts to its own channel: remove channel"))
		case hook && n.APIURL != "":
			c.add(l.Errorf("api_url", "is for bot mode (token + channel); a webhook posts to webhook_url: remove api_url"))
		}
		if n.WebhookURL != "" {
			checkURL(l, "webhook_url", n.WebhookURL.Reveal(), true, c, "https", "http")
		}
	case "telegram":
		if !secretGiven(l, "token", n.Token, c) {
			c.add(l.Errorf("token", "is required: the bot token from @BotFather (token: ${TELEGRAM_TOKEN} or token_file)"))
		}
		switch {
		case n.ChatID == "":
			c.add(l.Errorf("chat_id", "is required: the chat to post to, e.g. \"-1001234567890\" or \"@channelname\""))
		case !chatIDRE.MatchString(n.ChatID):
			c.add(l.Errorf("chat_id", "%q is not a chat id: use the numeric id (e.g. \"-1001234567890\") or \"@channelname\"", n.ChatID))
		}
		if l.written("message_thread_id") && n.MessageThreadID <= 0 {
			c.add(l.Errorf("message_thread_id", "must be a forum topic id (more than 0); remove it to post to the chat itself"))
		}
	case "email":
		validateEmail(n, c)
	case "webhook":
		if !secretGiven(l, "url", n.URL, c) {
			c.add(l.Errorf("url", "is required: the http(s) URL to POST alerts to"))
		} else if n.URL != "" {
			checkURL(l, "url", n.URL.Reveal(), true, c, "https", "http")
		}
	}
	if (n.Type == "slack" || n.Type == "telegram") && n.APIURL != "" {
		checkURL(l, "api_url", n.APIURL, false, c, "https", "http")
	}
	if n.Timeout <= 0 {
		c.add(l.Errorf("timeout", "must be more than 0 (e.g. 10s): how long one delivery attempt may take"))
	} else if n.MaxAge < n.Timeout {
		c.add(l.Errorf("max_age", "%v must be at least timeout (%v), or a notification would expire during its first attempt", n.MaxAge, n.Timeout))
	}
}

// checkTelegramBots reports telegram notifiers that take commands through
// one bot token from different api_url servers: the bot polls one server,
// so the daemon could not start its commands.
func checkTelegramBots(ns []Notifier, c *collector) {
	first := map[string]*Notifier{} // by token
	for i := range ns {
		n := &ns[i]
		token := strings.TrimSpace(n.Token.Reveal())
		if n.Type != "telegram" || !n.Commands || token == "" {
			continue
		}
		f, ok := first[token]
		if !ok {
			first[token] = n
			continue
		}
		if strings.TrimRight(n.APIURL, "/") != strings.TrimRight(f.APIURL, "/") {
			c.add(n.At.Errorf("api_url", "%s differs from the api_url of notifier %q (line %d), which takes commands through the same bot token: one bot polls one server; give both the same api_url, or set commands: false on one of them",
				apiURLText(n.APIURL), f.Name, f.At.Pos.Line))
		}
	}
}

func apiURLText(u string) string {
	if u == "" {
		return "no api_url (api.telegram.org)"
	}
	return strconv.Quote(u)
}

func validateEmail(n *Notifier, c *collector) {
	l := n.At
	switch {
	case n.SMTP == "":
		c.add(l.Errorf("smtp", "is required: the SMTP server as host:port, e.g. smtp.example.com:587"))
	default:
		if err := checkHostPort(n.SMTP); err != nil {
			c.add(l.Errorf("smtp", "%q %v (e.g. smtp.example.com:587)", n.SMTP, err))
		} else if h, _, _ := net.SplitHostPort(n.SMTP); h == "" {
			c.add(l.Errorf("smtp", "%q has no host (e.g. smtp.example.com:587)", n.SMTP))
		}
	}
	if !slices.Contains(tlsModes, n.TLS) {
		c.add(l.Errorf("tls", "%s", unknownChoice(c, "tls mode", n.TLS, tlsModes)))
	}
	if n.From == "" {
		c.add(l.Errorf("from", "is required: the sender address, e.g. marginwatch@example.com"))
	} else if _, err := mail.ParseAddress(n.From); err != nil {
		c.add(l.Errorf("from", "%q is not an email address (e.g. marginwatch@example.com)", n.From))
	}
	if len(n.To) == 0 {
		c.add(l.Errorf("to", "is required: at least one recipient, e.g. [me@example.com]"))
	}
	for i, to := range n.To {
		if _, err := mail.ParseAddress(to); err != nil {
			c.add(l.Errorf(fmt.Sprintf("to[%d]", i), "%q is not an email address (e.g. me@example.com)", to))
		}
	}
	password := secretGiven(l, "password", n.Password, c)
	if password && n.Username == "" {
		c.add(l.Errorf("password", "needs username: set the SMTP login name too"))
	}
	if host, _, err := net.SplitHostPort(n.SMTP); password && n.TLS == "none" && err == nil && host != "" && !isLoopbackHost(host) {
		c.add(l.Errorf("tls", "none would send the SMTP password to %s in clear text over the network; use tls: starttls (usually port 587) or tls: implicit (usually port 465), or send through a relay on this machine (smtp: 127.0.0.1:25) that forwards with TLS", host))
	}
}

// validateRules checks each rule on its own and that names are unique.
func validateRules(rules []Rule, c *collector) {
	seen := make(map[string]Location)
	for i := range rules {
		r := &rules[i]
		validateRule(r, c)
		checkRuleTraps(r, c)
		if r.Name == "" {
			continue
		}
		if first, dup := seen[r.Name]; dup {
			c.add(r.At.Errorf("name", "duplicate rule name %q (also %s at %s:%d); rule names must be unique across the config and its rule files", r.Name, first.Path, first.File, first.Pos.Line))
			continue
		}
		seen[r.Name] = r.At
	}
}

func validateRule(r *Rule, c *collector) {
	l := r.At
	switch {
	case r.Name == "":
		c.add(l.Errorf("name", "is required: a unique name such as \"liquidation-near\""))
	case r.Name == DataStaleRule:
		c.add(l.Errorf("name", "%q is the built-in rule raised when data stops; pick another name", r.Name))
	case r.Name == NotifierFailingRule || r.Name == ConfigReloadFailedRule:
		c.add(l.Errorf("name", "%q is a built-in rule of marginwatch about itself; pick another name", r.Name))
	case !ruleNameRE.MatchString(r.Name):
		c.add(l.Errorf("name", "%q: use lower-case letters, digits, '-', '_' and '.', starting with a letter or digit (e.g. \"liquidation-near\")", r.Name))
	}
	switch r.Scope {
	case "event":
		validateEventRule(r, c)
	case "account", "position":
		validateThresholdRule(r, c)
	default:
		c.add(l.Errorf("scope", "%s", unknownChoice(c, "scope", r.Scope, scopeNames)))
	}
	used := r.severities()
	for sev, d := range r.Repeat {
		field := "repeat." + sev
		if !l.written(field) {
			field = "repeat"
		}
		switch {
		case !slices.Contains(severityNames, sev):
			c.add(l.Errorf(field, "%s", unknownChoice(c, "severity", sev, severityNames)))
		case len(used) == 0:
			// No thresholds or no event severity: reported above; a
			// second error about repeat would only be noise.
		case !slices.Contains(used, sev):
			c.add(l.Errorf(field, "the rule never fires with %s; remove it (the rule has %s)", sev, oneOf(used)))
		case d <= 0:
			c.add(l.Errorf(field, "must be more than 0 (e.g. 1h): how often to remind while the alert keeps firing"))
		}
	}
	if r.Scope != "position" && r.Scope != "" && len(r.Symbols) > 0 {
		c.add(l.Errorf("symbols", "only position rules filter by symbol; remove symbols, or use scope: position"))
	}
	checkLabels(l, r.Labels, c)
}

func validateEventRule(r *Rule, c *collector) {
	l := r.At
	switch {
	case r.Event == "":
		c.add(l.Errorf("event", "is required for scope: event: %s", oneOf(eventNames)))
	case !slices.Contains(eventNames, r.Event):
		c.add(l.Errorf("event", "%s", unknownChoice(c, "event", r.Event, eventNames)))
	}
	switch {
	case r.Severity == "":
		c.add(l.Errorf("severity", "is required for an event rule: %s", oneOf(severityNames)))
	case !slices.Contains(severityNames, r.Severity):
		c.add(l.Errorf("severity", "%s", unknownChoice(c, "severity", r.Severity, severityNames)))
	}
	for _, k := range []string{"metric", "above", "below", "hysteresis", "any", "for", "keep_firing_for", "window", "reset_at", "timezone"} {
		if l.written(k) {
			c.add(l.Errorf(k, "an event rule has no %s (events fire once per occurrence); remove it", k))
		}
	}
}

func validateThresholdRule(r *Rule, c *collector) {
	l := r.At
	for _, k := range []string{"event", "severity"} {
		if l.written(k) {
			c.add(l.Errorf(k, "only an event rule (scope: event) takes %s; a threshold rule names its severities in above/below, e.g. above: {warning: 5}", k))
		}
	}
	if l.written("any") {
		validateAny(r, c)
	} else {
		conds := r.Conditions()
		validateCondition(&conds[0], r.Scope, c)
	}
	validateWindow(r, c)
}

func article(s string) string {
	if strings.IndexByte("aeiou", s[0]) >= 0 {
		return "an"
	}
	return "a"
}

func validateDigest(d *Digest, c *collector) {
	l := d.At
	checkName(l, "digest", d.Name, "morning", c)
	if d.Schedule == "" {
		c.add(l.Errorf("schedule", "is required: a cron schedule, e.g. \"0 8 * * *\" or \"CRON_TZ=Europe/Berlin 0 8 * * *\""))
		return
	}
	if _, err := ParseSchedule(d.Schedule); err != nil {
		c.add(l.Errorf("schedule", "%q: %v (use 5 fields \"minute hour day-of-month month weekday\", e.g. \"0 8 * * *\", optionally after CRON_TZ=Europe/Berlin)", d.Schedule, err))
	}
}

// hyperliquidAddress is a Hyperliquid (EVM) account address.
var hyperliquidAddress = regexp.MustCompile(`^0x[0-9a-fA-F]{40}$`)

// hexKey is what an EVM private key looks like.
var hexKey = regexp.MustCompile(`^(0x)?[0-9a-fA-F]{64}$`)

// validateHyperliquid checks a hyperliquid account: a public address and
// nothing secret (the account is read by its address alone, so it is
// read-only by construction).
func validateHyperliquid(a *Account, c *collector) {
	l := a.At
	switch {
	case !l.written("address") || a.Address == "":
		c.add(l.Errorf("address", "is required for a hyperliquid account: the account's public address, quoted (address: \"0x…\", 0x and 40 hex digits); no key is needed"))
	case hexKey.MatchString(a.Address):
		// Not echoed: it may be a private key.
		c.add(l.Errorf("address", "is 64 hex digits, the length of a private key (or a transaction hash), not an address; never give marginwatch a private key: use the account's public address, 0x and 40 hex digits"))
	case !hyperliquidAddress.MatchString(a.Address):
		c.add(l.Errorf("address", "%q is not a Hyperliquid address: want the account's public address, 0x and 40 hex digits", a.Address))
	case !checksumOK(a.Address[2:]):
		c.add(l.Errorf("address", "%q fails its EIP-55 checksum (the mixed upper and lower case): a digit is mistyped, and the daemon would watch an empty account; copy the address again, or write it all in lower case to skip the check", a.Address))
	}
	for _, k := range []string{"api_key", "api_key_file", "api_secret", "api_secret_file"} {
		if l.written(k) {
			c.add(l.Errorf(k, "a hyperliquid account is read by its public address and needs no key; remove %s (never give marginwatch a Hyperliquid private key)", k))
		}
	}
	if l.written("scenario") {
		c.add(l.Errorf("scenario", "only a simulated account takes a scenario; remove it, or set exchange: simulated"))
	}
	if l.written("allow_trading_key") {
		c.add(l.Errorf("allow_trading_key", "a hyperliquid account has no key; remove allow_trading_key"))
	}
}

// checksumOK checks the EIP-55 checksum of a mixed-case address's 40 hex
// digits: letter i is upper case exactly when nibble i of the Keccak-256
// of the lower-case digits is 8 or more. An all-lower or all-upper address
// carries no checksum.
func checksumOK(hex string) bool {
	lower := strings.ToLower(hex)
	if hex == lower || hex == strings.ToUpper(hex) {
		return true
	}
	h := sha3.NewLegacyKeccak256()
	h.Write([]byte(lower))
	sum := h.Sum(nil)
	for i := range len(hex) {
		if c := hex[i]; c > '9' { // a letter: its case is the checksum
			nibble := sum[i/2] >> 4
			if i%2 == 1 {
				nibble = sum[i/2] & 0xf
			}
			if (c <= 'F') != (nibble >= 8) {
				return false
			}
		}
	}
	return true
}
