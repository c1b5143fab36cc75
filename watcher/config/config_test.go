package config

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// envOf returns a lookup function over m.
func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// parseFile runs Parse on a file of testdata, as Load would, with env.
func parseFile(t *testing.T, name string, env map[string]string) (*Config, error) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return Parse(name, data, envOf(env))
}

// TestBadConfigs checks each testdata bad config against its exact error.
func TestBadConfigs(t *testing.T) {
	tests := []struct {
		file string
		want string
	}{
		{"unknown_key.yaml", `testdata/unknown_key.yaml:5:5: rules[0]: unknown key "hysterisis" (did you mean "hysteresis"?)
testdata/unknown_key.yaml:6:5: rules[0]: unknown key "threshold" (known keys: name, scope, metric, above, below, event, severity, hysteresis, any, for, repeat, keep_firing_for, window, reset_at, timezone, notify, accounts, symbols, send_resolved, summary, runbook, labels)`},
		{"bad_metric.yaml", `testdata/bad_metric.yaml:3:13: rules[0].metric: unknown metric "liq_distance" (did you mean "liq_distance_pct"?)`},
		{"wrong_side.yaml", `testdata/wrong_side.yaml:4:46: rules[0].below.critical: must be below warning (15) for a "below" rule
testdata/wrong_side.yaml:9:17: rules[1].above.critical: must be above warning (5) for an "above" rule`},
		{"bad_duration.yaml", `testdata/bad_duration.yaml:2:18: defaults.poll_interval: "15 seconds" is not a duration (use e.g. 15s, 1m30s)
testdata/bad_duration.yaml:3:16: defaults.stale_after: "1d" is not a duration (use e.g. 15s, 1m30s; days are written in hours, e.g. 24h)`},
		{"unset_env.yaml", `testdata/unset_env.yaml:4:14: accounts[0].api_key: environment variable BINANCE_API_KEY is not set
testdata/unset_env.yaml:5:17: accounts[0].api_secret: "BINANCE_API_SECRET:-x" is not a valid environment variable name (use letters, digits and _; write $$ for a literal $)`},
		{"secret_and_file.yaml", `testdata/secret_and_file.yaml:6:22: accounts[0].api_secret_file: set api_secret or api_secret_file, not both`},
		{"unknown_notifier.yaml", `testdata/unknown_notifier.yaml:8:21: rules[0].notify[1]: unknown notifier "opz" (did you mean "ops"?)
testdata/unknown_notifier.yaml:8:26: rules[0].notify[2]: unknown notifier "pager" (configured: ops, phone)`},
		{"notifier_field.yaml", `testdata/notifier_field.yaml:7:14: notifiers[1].chat_id: not a field of a slack notifier (a slack notifier takes webhook_url, webhook_url_file, channel, token, token_file, api_url, timeout and max_age)`},
		{"duplicate_rule.yaml", `testdata/duplicate_rule.yaml:5:11: rules[1].name: duplicate rule name "leverage-cap" (also rules[0] at testdata/duplicate_rule.yaml:2); rule names must be unique across the config and its rule files`},
		{"syntax.yaml", `testdata/syntax.yaml:4:4: YAML syntax: did not find expected '-' indicator (check the indentation)`},
		{"duplicate_key.yaml", `testdata/duplicate_key.yaml:6:5: accounts[0]: duplicate key "name" (first written at line 3); keep one
testdata/duplicate_key.yaml:7:1: duplicate key "listen" (first written at line 1); keep one`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			cfg, err := parseFile(t, filepath.Join("testdata", tt.file), nil)
			if err == nil {
				t.Fatalf("no error; config %+v", cfg)
			}
			if cfg != nil {
				t.Errorf("a config came back with the error")
			}
			var es Errors
			if !errors.As(err, &es) {
				t.Errorf("error is %T, want config.Errors", err)
			}
			if got := err.Error(); got != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// clearLocations zeroes every At, to compare values apart from positions.
func clearLocations(cfg *Config) {
	cfg.At = Location{}
	cfg.Defaults.At = Location{}
	for i := range cfg.Accounts {
		cfg.Accounts[i].At = Location{}
	}
	for i := range cfg.Notifiers {
		cfg.Notifiers[i].At = Location{}
	}
	for i := range cfg.Rules {
		cfg.Rules[i].At = Location{}
	}
	for i := range cfg.Digests {
		cfg.Digests[i].At = Location{}
	}
}

func TestFullConfig(t *testing.T) {
	dir, err := filepath.Abs("testdata")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"HC_ID":                 "abc-123",
		"BINANCE_API_KEY":       "k3y: with # hash",
		"CREDENTIALS_DIRECTORY": filepath.Join(dir, "secrets"),
		"COIN_SECRET":           "c${NOT_EXPANDED}$$",
		"SLACK_WEBHOOK_URL":     "https://hooks.slack.com/services/T0/B0/X#Y",
		"SLACK_TOKEN":           "xoxb-1",
		"SMTP_PASSWORD":         "p@ss: #word",
		"WEBHOOK_SECRET":        "whsec_abc",
	}
	cfg, err := parseFile(t, "testdata/full.yaml", env)
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}

	// Secrets, compared revealed (a Secret prints as <secret>).
	secrets := []struct {
		name string
		got  Secret
		want string
	}{
		{"heartbeat_url", cfg.HeartbeatURL, "https://hc.example.com/ping/abc-123"},
		{"accounts[0].api_key", cfg.Accounts[0].APIKey, "k3y: with # hash"},
		{"accounts[0].api_secret (file)", cfg.Accounts[0].APISecret, "s3cr3t-value"},
		{"accounts[1].api_key (file via $CREDENTIALS_DIRECTORY)", cfg.Accounts[1].APIKey, "coin-key"},
		{"accounts[1].api_secret (not expanded twice)", cfg.Accounts[1].APISecret, "c${NOT_EXPANDED}$$"},
		{"notifiers[0].webhook_url", cfg.Notifiers[0].WebhookURL, "https://hooks.slack.com/services/T0/B0/X#Y"},
		{"notifiers[1].token", cfg.Notifiers[1].Token, "xoxb-1"},
		{"notifiers[2].token (file)", cfg.Notifiers[2].Token, "123456:ABC-def"},
		{"notifiers[3].password", cfg.Notifiers[3].Password, "p@ss: #word"},
		{"notifiers[5].url", cfg.Notifiers[5].URL, "https://example.com/hook"},
		{"notifiers[5].secret", cfg.Notifiers[5].Secret, "whsec_abc"},
	}
	for _, s := range secrets {
		if s.got.Reveal() != s.want {
			t.Errorf("%s = %q, want %q", s.name, s.got.Reveal(), s.want)
		}
	}

	// Positions, before they are cleared.
	positions := []struct {
		name string
		got  Location
		key  string
		want Pos
		file string
		path string
	}{
		{"rules[0].below.critical", cfg.Rules[0].At, "below.critical", Pos{77, 36}, "testdata/full.yaml", "rules[0]"},
		{"rules[0].notify[1]", cfg.Rules[0].At, "notify[1]", Pos{81, 21}, "testdata/full.yaml", "rules[0]"},
		{"accounts[0].labels.desk", cfg.Accounts[0].At, "labels.desk", Pos{23, 20}, "testdata/full.yaml", "accounts[0]"},
		{"rule file b rules[0].metric", cfg.Rules[4].At, "metric", Pos{4, 13}, "testdata/rules.d/b.yaml", "rules[0]"},
	}
	for _, p := range positions {
		if got := p.got.Keys[p.key]; got != p.want {
			t.Errorf("%s at %v, want %v", p.name, got, p.want)
		}
		if p.got.File != p.file || p.got.Path != p.path {
			t.Errorf("%s: location %s %s, want %s %s", p.name, p.got.File, p.got.Path, p.file, p.path)
		}
	}
	if got, want := cfg.Rules[0].At.Pos, (Pos{74, 5}); got != want {
		t.Errorf("rules[0] at %v, want %v", got, want)
	}

	clearLocations(cfg)
	want := &Config{
		StateDir:     filepath.Join(dir, "state"),
		Listen:       "127.0.0.1:9999",
		HeartbeatURL: cfg.HeartbeatURL, // checked above
		Defaults:     Defaults{PollInterval: 20 * time.Second, StaleAfter: 2 * time.Minute},
		Accounts: []Account{
			{
				Name: "main", Exchange: "binance-usdm",
				APIKey: cfg.Accounts[0].APIKey, APISecret: cfg.Accounts[0].APISecret,
				APISecretFile:           filepath.Join(dir, "secrets/binance-secret"),
				Testnet:                 true,
				Endpoint:                "http://127.0.0.1:8080",
				StreamEndpoint:          "ws://127.0.0.1:8080",
				Stream:                  true,
				ReconcileInterval:       10 * time.Minute,
				PermissionCheckInterval: time.Hour,
				PollInterval:            5 * time.Second,
				StaleAfter:              30 * time.Second,
				AllowTradingKey:         true,
				Labels:                  map[string]string{"desk": "alpha", "cost": "$5"},
			},
			{
				Name: "coin", Exchange: "binance-coinm",
				APIKey: cfg.Accounts[1].APIKey, APISecret: cfg.Accounts[1].APISecret,
				APIKeyFile:              filepath.Join(dir, "secrets/coin-key"),
				ReconcileInterval:       5 * time.Minute,
				PermissionCheckInterval: time.Hour,
				PollInterval:            20 * time.Second,
				StaleAfter:              2 * time.Minute,
			},
			{
				Name: "demo", Exchange: "simulated", Scenario: "funding-spike",
				ReconcileInterval:       5 * time.Minute,
				PermissionCheckInterval: time.Hour,
				PollInterval:            20 * time.Second,
				StaleAfter:              2 * time.Minute,
			},
		},
		Notifiers: []Notifier{
			{Name: "ops", Type: "slack", WebhookURL: cfg.Notifiers[0].WebhookURL, Timeout: 5 * time.Second, MaxAge: 30 * time.Minute},
			{Name: "bot", Type: "slack", Token: cfg.Notifiers[1].Token, Channel: "C0123456789", APIURL: "http://127.0.0.1:9000/api", Timeout: 10 * time.Second, MaxAge: time.Hour},
			{
				Name: "phone", Type: "telegram", Token: cfg.Notifiers[2].Token,
				TokenFile: filepath.Join(dir, "secrets/telegram-token"),
				ChatID:    "-1001234", MessageThreadID: 7, SilentWarnings: true, Commands: true,
				APIURL:  "http://127.0.0.1:9001",
				Timeout: 10 * time.Second, MaxAge: time.Hour,
			},
			{
				Name: "mail", Type: "email", SMTP: "smtp.example.com:587", TLS: "starttls",
				Username: "me", Password: cfg.Notifiers[3].Password,
				From: "marginwatch@example.com", To: []string{"me@example.com", "Desk <desk@example.com>"},
				Timeout: 10 * time.Second, MaxAge: time.Hour,
			},
			{
				Name: "mail2", Type: "email", SMTP: "mail.example.com:465", TLS: "implicit",
				From: "mw@example.com", To: []string{"ops@example.com"},
				Timeout: 10 * time.Second, MaxAge: time.Hour,
			},
			{Name: "hook", Type: "webhook", URL: cfg.Notifiers[5].URL, Secret: cfg.Notifiers[5].Secret, Timeout: 10 * time.Second, MaxAge: time.Hour},
			{Name: "term", Type: "console", Timeout: 10 * time.Second, MaxAge: time.Hour},
		},
		RuleFiles: []string{filepath.Join(dir, "rules.d/*.yaml")},
		Rules: []Rule{
			{
				Name: "liquidation-near", Scope: "position", Metric: "liq_distance_pct",
				Below:      map[string]float64{"warning": 15, "critical": 7},
				Hysteresis: 2, For: 30 * time.Second,
				Repeat:       map[string]time.Duration{"warning": time.Hour, "critical": 10 * time.Minute},
				Notify:       []string{"phone", "ops"},
				Accounts:     []string{"main"},
				Symbols:      []string{"BTCUSDT", "ETHUSDT"},
				SendResolved: true,
				Summary:      `{{.Symbol}} {{.Side}} is {{printf "%.1f" .Value}}% from liquidation`,
				Runbook:      "Add margin or cut size; see the risk plan.",
				Labels:       map[string]string{"team": "risk"},
			},
			{
				Name: "drawdown", Scope: "account", Metric: "drawdown_pct",
				Above:  map[string]float64{"info": 1, "warning": 2, "critical": 3},
				Window: 12 * time.Hour,
				Repeat: map[string]time.Duration{"info": 30 * time.Minute, "warning": 30 * time.Minute, "critical": 30 * time.Minute},
			},
			{
				Name: "margin-call", Scope: "event", Event: "margin_call", Severity: "critical",
				Repeat: map[string]time.Duration{"critical": 10 * time.Minute}, SendResolved: true,
			},
			{
				Name: "leverage-cap", Scope: "position", Metric: "leverage",
				Above:  map[string]float64{"warning": 5},
				Repeat: map[string]time.Duration{"warning": time.Hour}, SendResolved: true,
			},
			{
				Name: "account-leverage", Scope: "account", Metric: "effective_leverage",
				Above:  map[string]float64{"warning": 3, "critical": 5},
				Repeat: map[string]time.Duration{"warning": time.Hour, "critical": 10 * time.Minute},
				Notify: []string{"term"}, SendResolved: true,
			},
			{
				// Merged from account-leverage with metric and above nulled.
				Name: "liquidated", Scope: "event", Event: "liquidation", Severity: "warning",
				Repeat: map[string]time.Duration{"warning": time.Hour},
				Notify: []string{"term"}, SendResolved: true,
			},
		},
		Digests: []Digest{
			{Name: "morning", Schedule: "CRON_TZ=Europe/Berlin 0 8 * * *", Notify: []string{"ops"}},
			{Name: "hourly", Schedule: "@every 1h", Accounts: []string{"main", "coin"}},
		},
		Path:  filepath.Join(dir, "full.yaml"),
		Files: []string{filepath.Join(dir, "full.yaml"), filepath.Join(dir, "rules.d/a.yaml"), filepath.Join(dir, "rules.d/b.yaml")},
	}
	want.Sums = fileSums(t, want.Files...)
	// The secrets' modes are the checkout's (git keeps no 0600): whether
	// they warn is TestReadableSecrets' business.
	cfg.warned = nil
	compare(t, cfg, want)
}

// fileSums is the SHA-256 of each file by path, as Config.Sums holds them.
func fileSums(t *testing.T, paths ...string) map[string][32]byte {
	t.Helper()
	sums := make(map[string][32]byte)
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		sums[p] = sha256.Sum256(data)
	}
	return sums
}

// compare reports differences part by part, so a failure points at the
// element that differs.
func compare(t *testing.T, got, want *Config) {
	t.Helper()
	g, w := *got, *want
	for i := 0; i < max(len(g.Accounts), len(w.Accounts)); i++ {
		if i >= len(g.Accounts) || i >= len(w.Accounts) || !reflect.DeepEqual(g.Accounts[i], w.Accounts[i]) {
			t.Errorf("accounts[%d]:\n got %+v\nwant %+v", i, at(g.Accounts, i), at(w.Accounts, i))
		}
	}
	for i := 0; i < max(len(g.Notifiers), len(w.Notifiers)); i++ {
		if i >= len(g.Notifiers) || i >= len(w.Notifiers) || !reflect.DeepEqual(g.Notifiers[i], w.Notifiers[i]) {
			t.Errorf("notifiers[%d]:\n got %+v\nwant %+v", i, at(g.Notifiers, i), at(w.Notifiers, i))
		}
	}
	for i := 0; i < max(len(g.Rules), len(w.Rules)); i++ {
		if i >= len(g.Rules) || i >= len(w.Rules) || !reflect.DeepEqual(g.Rules[i], w.Rules[i]) {
			t.Errorf("rules[%d]:\n got %+v\nwant %+v", i, at(g.Rules, i), at(w.Rules, i))
		}
	}
	g.Accounts, w.Accounts, g.Notifiers, w.Notifiers, g.Rules, w.Rules = nil, nil, nil, nil, nil, nil
	if !reflect.DeepEqual(g, w) {
		t.Errorf("config:\n got %+v\nwant %+v", g, w)
	}
}

func at[T any](s []T, i int) any {
	if i < len(s) {
		return s[i]
	}
	return "(missing)"
}

// TestDefaults checks every default on a minimal config, with defaults:
// written after the accounts it applies to.
func TestDefaults(t *testing.T) {
	src := `
accounts:
  - name: demo
    exchange: simulated
    scenario: calm
  - name: own
    exchange: simulated
    scenario: crash
    poll_interval: 2s
    stale_after: 5s
notifiers:
  - {name: mail, type: email, smtp: "localhost:25", from: a@example.com, to: [b@example.com]}
rules:
  - {name: liq, metric: liq_distance_pct, below: {warning: 15, critical: 7}}
  - {name: dd, metric: drawdown_pct, above: {info: 1}}
  - {name: both, metric: margin_ratio, above: {critical: 0.8}}
  - {name: call, event: margin_call, severity: warning, summary: }
defaults:
  poll_interval: 30s
  stale_after: 90s
`
	cfg, err := Parse("/etc/marginwatch/config.yaml", []byte(src), nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		got, want any
	}{
		{"state_dir", cfg.StateDir, "/var/lib/marginwatch"},
		{"listen", cfg.Listen, "127.0.0.1:9464"},
		{"accounts[0].poll_interval from defaults", cfg.Accounts[0].PollInterval, 30 * time.Second},
		{"accounts[0].stale_after from defaults", cfg.Accounts[0].StaleAfter, 90 * time.Second},
		{"accounts[0].reconcile_interval", cfg.Accounts[0].ReconcileInterval, 5 * time.Minute},
		{"accounts[1].poll_interval own", cfg.Accounts[1].PollInterval, 2 * time.Second},
		{"accounts[1].stale_after own", cfg.Accounts[1].StaleAfter, 5 * time.Second},
		{"notifiers[0].timeout", cfg.Notifiers[0].Timeout, 10 * time.Second},
		{"notifiers[0].max_age", cfg.Notifiers[0].MaxAge, time.Hour},
		{"notifiers[0].tls", cfg.Notifiers[0].TLS, "starttls"},
		{"rules[0].scope of a position metric", cfg.Rules[0].Scope, "position"},
		{"rules[0].repeat", cfg.Rules[0].Repeat, map[string]time.Duration{"warning": time.Hour, "critical": 10 * time.Minute}},
		{"rules[0].send_resolved", cfg.Rules[0].SendResolved, true},
		{"rules[0].window", cfg.Rules[0].Window, time.Duration(0)},
		{"rules[0].notify (nil: every notifier)", cfg.Rules[0].Notify, []string(nil)},
		{"rules[1].scope of an account metric", cfg.Rules[1].Scope, "account"},
		{"rules[1].window", cfg.Rules[1].Window, 24 * time.Hour},
		{"rules[1].repeat info", cfg.Rules[1].Repeat, map[string]time.Duration{"info": 4 * time.Hour}},
		{"rules[2].scope of a metric of both scopes", cfg.Rules[2].Scope, "account"},
		{"rules[3].scope with event:", cfg.Rules[3].Scope, "event"},
		{"rules[3].repeat", cfg.Rules[3].Repeat, map[string]time.Duration{"warning": time.Hour}},
		{"files", cfg.Files, []string{"/etc/marginwatch/config.yaml"}},
		{"path", cfg.Path, "/etc/marginwatch/config.yaml"},
	}
	for _, tt := range tests {
		if !reflect.DeepEqual(tt.got, tt.want) {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
}

// TestRuleFiles loads a config whose rule_files glob matches two files.
func TestRuleFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("config.yaml", `
notifiers: [{name: term, type: console}]
rule_files: [rules.d/*.yaml, rules.d/a.yaml]
rules:
  - {name: inline, metric: leverage, above: {warning: 5}}
`)
	write("rules.d/a.yaml", "rules:\n  - {name: from-a, metric: equity, below: {warning: 100}, notify: [term]}\n")
	write("rules.d/b.yaml", "rules:\n  - {name: from-b, event: liquidation, severity: critical}\n")
	write("rules.d/c.yml", "not: [a rule file]\n") // does not match *.yaml

	cfg, err := Load(filepath.Join(dir, "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var names, files []string
	for _, r := range cfg.Rules {
		names = append(names, r.Name)
		files = append(files, r.At.File)
	}
	wantNames := []string{"inline", "from-a", "from-b"}
	wantFiles := []string{filepath.Join(dir, "config.yaml"), filepath.Join(dir, "rules.d/a.yaml"), filepath.Join(dir, "rules.d/b.yaml")}
	if !reflect.DeepEqual(names, wantNames) {
		t.Errorf("rules %v, want %v", names, wantNames)
	}
	if !reflect.DeepEqual(files, wantFiles) {
		t.Errorf("rule locations %v, want %v", files, wantFiles)
	}
	if !reflect.DeepEqual(cfg.Files, wantFiles) {
		t.Errorf("Files %v, want %v (each once)", cfg.Files, wantFiles)
	}
	if want := []string{filepath.Join(dir, "rules.d/*.yaml"), filepath.Join(dir, "rules.d/a.yaml")}; !reflect.DeepEqual(cfg.RuleFiles, want) {
		t.Errorf("RuleFiles %v, want %v", cfg.RuleFiles, want)
	}

	// Errors in rule files name the rule file; rule names are unique across
	// files; errors come in file order.
	write("rules.d/b.yaml", "rules:\n  - {name: from-a, event: liquidation, severity: critical}\n  - {name: x, metric: equty, above: {warning: 1}}\n")
	write("rules.d/a.yaml", "rule:\n  - {name: from-a}\n")
	_, err = Load(filepath.Join(dir, "config.yaml"))
	want := strings.Join([]string{
		filepath.Join(dir, "rules.d/a.yaml") + `:1:1: unknown key "rule" (did you mean "rules"?)`,
		filepath.Join(dir, "rules.d/b.yaml") + `:3:23: rules[1].metric: unknown metric "equty" (did you mean "equity"?)`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	write("rules.d/a.yaml", "rules:\n  - {name: inline, metric: leverage, above: {warning: 5}}\n")
	write("rules.d/b.yaml", "rules: []\n")
	_, err = Load(filepath.Join(dir, "config.yaml"))
	want = filepath.Join(dir, "rules.d/a.yaml") + `:2:12: rules[0].name: duplicate rule name "inline" (also rules[0] at ` + filepath.Join(dir, "config.yaml") + `:5); rule names must be unique across the config and its rule files`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

// TestLoadEnvironment checks that Load expands ${VAR} from the process
// environment and reports a missing file.
func TestLoadEnvironment(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.yaml")
	src := "accounts:\n  - {name: main, exchange: binance-usdm, api_key: \"${MW_TEST_KEY}\", api_secret: \"a$$b\"}\n"
	if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MW_TEST_KEY", "k: #v")
	cfg, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.Accounts[0].APIKey.Reveal(); got != "k: #v" {
		t.Errorf("api_key = %q, want %q", got, "k: #v")
	}
	if got := cfg.Accounts[0].APISecret.Reveal(); got != "a$b" {
		t.Errorf("api_secret = %q, want %q", got, "a$b")
	}

	missing := filepath.Join(dir, "nope.yaml")
	_, err = Load(missing)
	want := missing + ": cannot read the config file: stat " + missing + ": no such file or directory"
	if err == nil || err.Error() != want {
		t.Errorf("error %v, want %s", err, want)
	}
}

func TestExpand(t *testing.T) {
	env := envOf(map[string]string{"A": "x: #y", "B": "$$", "EMPTY": ""})
	tests := []struct {
		in, want, err string
	}{
		{in: "plain", want: "plain"},
		{in: "${A}", want: "x: #y"},
		{in: "pre-${A}-post", want: "pre-x: #y-post"},
		{in: "${B}", want: "$$"}, // values are not expanded again
		{in: "$$", want: "$"},
		{in: "$${A}", want: "${A}"},
		{in: "a$b", want: "a$b"},
		{in: "{{$x := .Value}}", want: "{{$x := .Value}}"},
		{in: "cost$", want: "cost$"},
		{in: "${EMPTY}", want: ""},
		{in: "${A}${A}", want: "x: #yx: #y"},
		{in: "${MISSING}", err: "environment variable MISSING is not set"},
		{in: "${A", err: "unterminated ${ (write ${NAME}, or $$ for a literal $)"},
		{in: "${}", err: `"" is not a valid environment variable name (use letters, digits and _; write $$ for a literal $)`},
		{in: "${1A}", err: `"1A" is not a valid environment variable name (use letters, digits and _; write $$ for a literal $)`},
	}
	for _, tt := range tests {
		got, err := expand(tt.in, env)
		switch {
		case tt.err != "" && (err == nil || err.Error() != tt.err):
			t.Errorf("expand(%q) error %v, want %s", tt.in, err, tt.err)
		case tt.err == "" && (err != nil || got != tt.want):
			t.Errorf("expand(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestSuggest(t *testing.T) {
	keys := []string{"hysteresis", "metric", "notify", "name", "liq_distance_pct", "liq_distance_atr"}
	tests := []struct{ in, want string }{
		{"hysterisis", "hysteresis"},
		{"metrc", "metric"},
		{"Metric", "metric"},
		{"liq_distance", "liq_distance_pct"},
		{"notify_to", "notify"},
		{"x", ""},
		{"threshold", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := suggest(tt.in, keys); got != tt.want {
			t.Errorf("suggest(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
	if d := editDistance("kitten", "sitting"); d != 3 {
		t.Errorf("editDistance(kitten, sitting) = %d, want 3", d)
	}
}

// TestShippedFiles checks that the repository's example files load: the
// demo and rules.example.yaml (a rules-only file that must pass check).
func TestShippedFiles(t *testing.T) {
	for _, p := range []string{"../../examples/demo.yaml", "../../rules.example.yaml"} {
		if _, err := os.Stat(p); err != nil {
			t.Skipf("%s not present: %v", p, err)
		}
		cfg, err := Load(p)
		if err != nil {
			t.Errorf("Load(%s): %v", p, err)
			continue
		}
		if len(cfg.Rules) == 0 {
			t.Errorf("%s: no rules", p)
		}
	}
}

func TestParseRules(t *testing.T) {
	rules, err := ParseRules("r.yaml", []byte("rules:\n  - {name: a, metric: leverage, above: {warning: 5}, notify: [nobody]}\n"), nil)
	if err != nil {
		t.Fatalf("ParseRules: %v (notify names are checked by Parse, not here)", err)
	}
	if len(rules) != 1 || rules[0].Scope != "position" || rules[0].At.File != "r.yaml" {
		t.Errorf("rules = %+v", rules)
	}
	_, err = ParseRules("r.yaml", []byte("notifiers: []\nrules:\n  - {name: a, metric: leverage, above: {warning: 5}}\n  - {name: a, metric: leverage, below: {warning: 5}}\n"), nil)
	want := `r.yaml:1:1: unknown key "notifiers" (known keys: rules)
r.yaml:4:12: rules[1].name: duplicate rule name "a" (also rules[0] at r.yaml:3); rule names must be unique across the config and its rule files`
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
}

// TestSecretsStayOut checks that no secret value reaches an error message.
func TestSecretsStayOut(t *testing.T) {
	dir := t.TempDir()
	big := filepath.Join(dir, "big")
	content := "hunter2-" + strings.Repeat("x", 70<<10)
	if err := os.WriteFile(big, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "hunter2-not-a-url"
	src := `
accounts:
  - {name: a, exchange: binance-usdm, api_key: "${S}", api_secret_file: ` + big + `}
notifiers:
  - {name: s, type: slack, webhook_url: "${S}"}
  - {name: w, type: webhook, url: "${S}", secret: "${S}", secret_file: x}
  - {name: t, type: telegram, token: "${S}", chat_id: "${S}"}
heartbeat_url: "${S}"
`
	_, err := Parse(filepath.Join(dir, "c.yaml"), []byte(src), envOf(map[string]string{"S": secret}))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	for _, want := range []string{
		"accounts[0].api_secret_file: cannot read the secret: " + big + ": file too large (limit 65536 bytes)",
		"notifiers[0].webhook_url: is not an absolute https or http URL",
		"notifiers[1].url: is not an absolute https or http URL",
		"notifiers[1].secret_file: set secret or secret_file, not both",
		"heartbeat_url: is not an absolute http or https URL",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	// chat_id is not a secret and may be quoted; every other use must not be.
	msg = strings.ReplaceAll(msg, `chat_id: "`+secret+`"`, "")
	if strings.Contains(msg, "hunter2") {
		t.Errorf("a secret leaked into the error:\n%s", msg)
	}
}

// TestAliasBomb checks that merge keys nested 30 deep, each merging its
// predecessor four times (4^30 mappings if expanded), fail fast with one
// clear error instead of hanging.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString("x-a0: &a0 {name: r}\n")
	for i := 1; i < 30; i++ {
		fmt.Fprintf(&b, "x-a%d: &a%d {<<: [*a%d, *a%d, *a%d, *a%d]}\n", i, i, i-1, i-1, i-1, i-1)
	}
	b.WriteString("rules: [{<<: *a29}]\n")
	_, err := Parse("c.yaml", []byte(b.String()), nil)
	want := "c.yaml:1:7: aliases and merge keys expand this file to too many values; write the values out or nest fewer aliases"
	if err == nil || err.Error() != want {
		t.Errorf("error:\n%v\nwant:\n%s", err, want)
	}
	// A plain list of aliases is fine.
	src := "x-n: &n [term]\nnotifiers: [{name: term, type: console}]\nrules:\n"
	for i := range 200 {
		src += fmt.Sprintf("  - {name: r%d, metric: leverage, above: {warning: 5}, notify: *n}\n", i)
	}
	if _, err := Parse("c.yaml", []byte(src), nil); err != nil {
		t.Errorf("200 rules sharing an alias: %v", err)
	}
}

// TestTelegramCommands: a telegram notifier takes commands unless it says
// commands: false; no other notifier type takes the key.
func TestTelegramCommands(t *testing.T) {
	src := `
notifiers:
  - {name: a, type: telegram, token: t, chat_id: "1"}
  - {name: b, type: telegram, token: t, chat_id: "2", commands: false}
`
	cfg, err := Parse("c.yaml", []byte(src), envOf(nil))
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Notifiers[0].Commands || cfg.Notifiers[1].Commands {
		t.Errorf("commands = %v, %v; want true (default), false", cfg.Notifiers[0].Commands, cfg.Notifiers[1].Commands)
	}
	_, err = Parse("c.yaml", []byte("notifiers: [{name: n, type: console, commands: true}]\n"), envOf(nil))
	if err == nil || !strings.Contains(err.Error(), "notifiers[0].commands: not a field of a console notifier") {
		t.Errorf("commands on a console notifier: err = %v", err)
	}
}
