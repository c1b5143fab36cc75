package config

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"time"
)

// Defaults applied by Load.
const (
	DefaultStateDir          = "/var/lib/marginwatch"
	DefaultListen            = "127.0.0.1:9464"
	DefaultPollInterval      = 15 * time.Second
	DefaultStaleAfter        = 60 * time.Second
	DefaultReconcileInterval = 5 * time.Minute
	// DefaultPermissionCheckInterval is how often a running daemon asks
	// the exchange for its API key's permissions again.
	DefaultPermissionCheckInterval = time.Hour
	// MinPermissionCheckInterval keeps the permission check from spending
	// the exchange's request weight: Binance bans an IP that overspends.
	MinPermissionCheckInterval = time.Minute
	DefaultNotifierTimeout     = 10 * time.Second
	DefaultNotifierMaxAge      = time.Hour
	DefaultEmailTLS            = "starttls"
	DefaultDrawdownWindow      = 24 * time.Hour
)

// defaultRepeat is how often a firing rule repeats its notice, per severity,
// when the rule does not say.
var defaultRepeat = map[string]time.Duration{
	"critical": 10 * time.Minute,
	"warning":  time.Hour,
	"info":     4 * time.Hour,
}

// Size limits keep a wrong path (a log file, /dev/zero) from being read
// whole, and bound the work of parsing: a config or rule file over 1 MiB is
// certainly a mistake.
const (
	maxConfigSize = 1 << 20
	maxSecretSize = 64 << 10
	// maxRuleFiles bounds the files all rule_files patterns may match.
	maxRuleFiles = 1000
)

// files is how Parse reaches the disk: the rule_files globs and the *_file
// secrets. Load and Parse use the real file system (osFiles); tests (the
// fuzz target) use an in-memory one, so that made-up paths never touch real
// files.
type files interface {
	// glob returns the names matching pattern, as filepath.Glob.
	glob(pattern string) ([]string, error)
	// read returns the content of the regular file path, of at most limit
	// bytes.
	read(path string, limit int64) ([]byte, error)
}

// osFiles is the real file system.
type osFiles struct{}

func (osFiles) glob(pattern string) ([]string, error)         { return filepath.Glob(pattern) }
func (osFiles) read(path string, limit int64) ([]byte, error) { return readLimited(path, limit) }

// Load reads the config file at path and every rule file it names, and
// returns the validated config. ${VAR}s expand from the process environment.
// On any problem it returns Errors (all problems found, in file order), each
// "file:line:col: field.path: message".
func Load(path string) (*Config, error) {
	data, err := readLimited(path, maxConfigSize)
	if err != nil {
		return nil, Errors{{File: path, Msg: fmt.Sprintf("cannot read the config file: %v", err)}}
	}
	return Parse(path, data, os.LookupEnv)
}

// Parse is Load on in-memory bytes: name is used in messages and to resolve
// relative paths (rule_files, state_dir, *_file secrets), which are read from
// disk. env looks up ${VAR}s; nil means no variable is set.
func Parse(name string, data []byte, env func(string) (string, bool)) (*Config, error) {
	return parse(name, data, env, osFiles{})
}

// parse is Parse reading rule files and secrets through fsys.
func parse(name string, data []byte, env func(string) (string, bool), fsys files) (*Config, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	c := &collector{}
	if e := checkSize(name, data); e != nil {
		c.add(e)
		return nil, c.sorted([]string{name})
	}
	cfg := newConfig(name)
	cfg.Sums[cfg.Path] = sha256.Sum256(data)
	dir, absDir := filepath.Dir(name), filepath.Dir(cfg.Path)
	display := []string{name}

	if root := parseDocument(name, data, c); root != nil {
		d := newDecoder(name, len(data), env, c)
		d.decodeStruct(root, reflect.ValueOf(cfg).Elem(), "", nil, "")
		if d.budget < 0 {
			return nil, c.sorted(display) // what was decoded is partial: validating it is noise
		}
		finishRules(cfg.Rules, d.repeatAll)
	}

	if cfg.StateDir != "" {
		if filepath.IsAbs(cfg.StateDir) {
			cfg.StateDir = filepath.Clean(cfg.StateDir)
		} else {
			cfg.StateDir = filepath.Join(absDir, cfg.StateDir)
		}
	}
	readSecrets(cfg, absDir, fsys, c)

	ruleFiles := 0
	var missed []unmatchedGlob
	for i, pat := range cfg.RuleFiles {
		field := fmt.Sprintf("rule_files[%d]", i)
		rel := filepath.Clean(pat)
		cfg.RuleFiles[i] = rel
		if !filepath.IsAbs(pat) {
			rel = filepath.Join(dir, pat)
			cfg.RuleFiles[i] = filepath.Join(absDir, pat)
		}
		matches, err := fsys.glob(rel)
		if err != nil {
			c.add(cfg.At.Errorf(field, "bad pattern %q: %v (in a glob * ? [ are special; escape them with \\)", pat, err))
			continue
		}
		if len(matches) == 0 {
			missed = append(missed, unmatchedGlob{field, pat, rel})
		}
		if ruleFiles += len(matches); ruleFiles > maxRuleFiles {
			c.add(cfg.At.Errorf(field, "%q matches too many files: rule_files may name at most %d files in all; is the pattern right?", pat, maxRuleFiles))
			break
		}
		for _, m := range matches {
			abs := absPath(m)
			if slices.Contains(cfg.Files, abs) {
				continue // named twice, or the config file itself
			}
			data, err := fsys.read(m, maxConfigSize)
			if err != nil {
				c.add(cfg.At.Errorf(field, "cannot read rule file: %v", err))
				continue
			}
			cfg.Files = append(cfg.Files, abs)
			cfg.Sums[abs] = sha256.Sum256(data)
			display = append(display, m)
			cfg.Rules = append(cfg.Rules, parseRules(m, data, env, c)...)
		}
	}

	checkUnmatchedRuleFiles(cfg, missed, c)
	finishConfig(cfg)
	limitHyperliquidStreams(cfg)
	validate(cfg, c)
	validateAdmin(&cfg.Admin, c)
	checkListen(cfg, c)
	warnReadableSecrets(cfg, fsys)
	if len(c.errs) > 0 {
		return nil, c.sorted(display)
	}
	return cfg, nil
}

// ChangedOnDisk reports whether a config or rule file differs from what c
// was loaded from: its content changed, it is gone or unreadable, or a
// file newly matches a rule_files glob. The daemon asks it once its file
// watch runs, so that an edit made while it started is not missed.
func (c *Config) ChangedOnDisk() bool {
	check := slices.Clone(c.Files)
	for _, g := range c.RuleFiles {
		m, _ := filepath.Glob(g)
		check = append(check, m...)
	}
	for _, f := range check {
		want, known := c.Sums[absPath(f)]
		data, err := readLimited(f, maxConfigSize)
		if !known || err != nil || sha256.Sum256(data) != want {
			return true
		}
	}
	return false
}

// ParseRules parses one rule file, whose only top-level key is `rules:`, and
// validates each rule on its own: names it refers to (notify, accounts) are
// checked by Parse, which knows the notifiers and accounts. name is used in
// messages; env looks up ${VAR}s (nil: none set).
func ParseRules(name string, data []byte, env func(string) (string, bool)) ([]Rule, error) {
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	c := &collector{}
	if e := checkSize(name, data); e != nil {
		c.add(e)
		return nil, c.sorted([]string{name})
	}
	rules := parseRules(name, data, env, c)
	validateRules(rules, c)
	if len(c.errs) > 0 {
		return nil, c.sorted([]string{name})
	}
	return rules, nil
}

// ruleFile is the shape of a rule file.
type ruleFile struct {
	Rules []Rule `yaml:"rules"`
}

// checkSize refuses data over maxConfigSize: parsing and checking a file
// costs time in proportion to its size (and more on errors).
func checkSize(name string, data []byte) *Error {
	if len(data) <= maxConfigSize {
		return nil
	}
	return &Error{File: name, Msg: fmt.Sprintf("the file is %d bytes: a config or rule file may be at most %d (1 MiB); is it the right file?", len(data), maxConfigSize)}
}

// parseRules decodes a rule file and fills the rules' defaults.
func parseRules(name string, data []byte, env func(string) (string, bool), c *collector) []Rule {
	if e := checkSize(name, data); e != nil {
		c.add(e)
		return nil
	}
	root := parseDocument(name, data, c)
	if root == nil {
		return nil
	}
	var rf ruleFile
	d := newDecoder(name, len(data), env, c)
	d.decodeStruct(root, reflect.ValueOf(&rf).Elem(), "", nil, "")
	if d.budget < 0 {
		return nil
	}
	finishRules(rf.Rules, d.repeatAll)
	return rf.Rules
}

// newConfig returns a config holding the top-level defaults, before decoding.
func newConfig(name string) *Config {
	path := absPath(name)
	return &Config{
		StateDir: DefaultStateDir,
		Listen:   DefaultListen,
		Defaults: Defaults{
			PollInterval: DefaultPollInterval,
			StaleAfter:   DefaultStaleAfter,
			At:           Location{File: name, Path: "defaults", Keys: map[string]Pos{}},
		},
		Path:  path,
		Files: []string{path},
		Sums:  map[string][32]byte{},
		At:    Location{File: name, Keys: map[string]Pos{}},
	}
}

// assignDefaults sets an element's defaults before it is decoded, so that a
// key written in the file wins.
func assignDefaults(v reflect.Value) {
	if !v.CanAddr() {
		return
	}
	switch p := v.Addr().Interface().(type) {
	case *Defaults:
		p.PollInterval = DefaultPollInterval
		p.StaleAfter = DefaultStaleAfter
	case *Account:
		p.ReconcileInterval = DefaultReconcileInterval
		p.PermissionCheckInterval = DefaultPermissionCheckInterval
	case *Notifier:
		p.Timeout = DefaultNotifierTimeout
		p.MaxAge = DefaultNotifierMaxAge
	case *Rule:
		p.SendResolved = true
	}
}

// finishConfig fills the defaults that depend on other parts of the file
// (defaults: may come after accounts:) or on an element's type.
func finishConfig(cfg *Config) {
	for i := range cfg.Accounts {
		a := &cfg.Accounts[i]
		if !a.At.written("poll_interval") {
			a.PollInterval = cfg.Defaults.PollInterval
		}
		if !a.At.written("stale_after") {
			a.StaleAfter = cfg.Defaults.StaleAfter
		}
	}
	for i := range cfg.Notifiers {
		n := &cfg.Notifiers[i]
		if n.Type == "email" && !n.At.written("tls") {
			n.TLS = DefaultEmailTLS
		}
		if n.Type == "telegram" && !n.At.written("commands") {
			n.Commands = true
		}
	}
}

// finishRules fills the defaults that depend on a rule's metric and
// severities: scope, window and repeat. repeatAll holds the rules (by path)
// whose repeat: was written as one duration.
func finishRules(rules []Rule, repeatAll map[string]time.Duration) {
	for i := range rules {
		r := &rules[i]
		if !r.At.written("scope") {
			switch {
			case r.At.written("event") && !r.At.written("metric") && !r.At.written("any"):
				r.Scope = "event"
			case positionOnly(r):
				r.Scope = "position"
			default:
				r.Scope = "account"
			}
		}
		finishWindow(r)
		sevs := r.severities()
		if len(sevs) == 0 {
			continue
		}
		if r.Repeat == nil {
			r.Repeat = make(map[string]time.Duration)
		}
		all, single := repeatAll[r.At.Path]
		for _, s := range sevs {
			switch {
			case single:
				r.Repeat[s] = all
			case !r.At.written("repeat." + s):
				r.Repeat[s] = defaultRepeat[s]
			}
		}
	}
}

// severityNames in rising order.
var severityNames = []string{"info", "warning", "critical"}

// severities lists the valid severities a rule can fire with, in rising order.
func (r *Rule) severities() []string {
	var out []string
	conds := r.Conditions()
	for _, s := range severityNames {
		has := r.Scope == "event" && r.Severity == s
		for _, cd := range conds {
			_, above := cd.Above[s]
			_, below := cd.Below[s]
			has = has || above || below
		}
		if has {
			out = append(out, s)
		}
	}
	return out
}

// written reports whether key (or a nested "key.sub") was written in the
// element with a value.
func (l Location) written(key string) bool {
	_, ok := l.Keys[key]
	return ok
}

// readSecrets reads every *_file secret into its plain field.
func readSecrets(cfg *Config, dir string, fsys files, c *collector) {
	readSecret(cfg.At, "heartbeat_url", &cfg.HeartbeatURL, &cfg.HeartbeatURLFile, dir, fsys, c)
	readSecret(cfg.Admin.At, "token", &cfg.Admin.Token, &cfg.Admin.TokenFile, dir, fsys, c)
	for i := range cfg.Accounts {
		a := &cfg.Accounts[i]
		if a.Exchange == "simulated" {
			continue // takes no keys; validation says so
		}
		readSecret(a.At, "api_key", &a.APIKey, &a.APIKeyFile, dir, fsys, c)
		readSecret(a.At, "api_secret", &a.APISecret, &a.APISecretFile, dir, fsys, c)
	}
	for i := range cfg.Notifiers {
		n := &cfg.Notifiers[i]
		for _, s := range []struct {
			key  string
			val  *Secret
			file *string
		}{
			{"webhook_url", &n.WebhookURL, &n.WebhookURLFile},
			{"token", &n.Token, &n.TokenFile},
			{"password", &n.Password, &n.PasswordFile},
			{"url", &n.URL, &n.URLFile},
			{"secret", &n.Secret, &n.SecretFile},
		} {
			// A secret that is not a field of this type is reported as
			// such by validation; reading it would only add noise.
			if slices.Contains(notifierFields[n.Type], s.key+"_file") {
				readSecret(n.At, s.key, s.val, s.file, dir, fsys, c)
			}
		}
	}
}

// readSecret reads the file named by the key name+"_file" into val, and
// stores the resolved path back into file. Errors name the file, never its
// content.
func readSecret(l Location, name string, val *Secret, file *string, dir string, fsys files, c *collector) {
	fileKey := name + "_file"
	if !l.written(fileKey) {
		return
	}
	if l.written(name) {
		c.addBad(l.Errorf(fileKey, "set %s or %s, not both", name, fileKey))
		return
	}
	if *file == "" {
		c.addBad(l.Errorf(fileKey, "is empty: give the path of a file holding the secret, or remove it"))
		return
	}
	p := *file
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	*file = p
	data, err := fsys.read(p, maxSecretSize)
	if err != nil {
		c.addBad(l.Errorf(fileKey, "cannot read the secret: %v", err))
		return
	}
	s := trimRightSpace(string(data))
	if s == "" {
		c.addBad(l.Errorf(fileKey, "%s is empty; write the secret into it", p))
		return
	}
	*val = Secret(s)
}

func trimRightSpace(s string) string {
	for len(s) > 0 {
		switch s[len(s)-1] {
		case ' ', '\t', '\r', '\n':
			s = s[:len(s)-1]
			continue
		}
		break
	}
	return s
}

// readLimited reads a regular file of at most limit bytes. Anything else (a
// directory, a FIFO that would block, /dev/zero) is refused.
//
// The file is opened without blocking (opening a FIFO waits for a writer)
// and checked again once open, so that it cannot be swapped for a FIFO
// between the check and the open. A read deadline covers the odd "regular"
// file that can block, such as /proc/kmsg; for true regular files it does
// not apply (they are not pollable) and is not needed.
func readLimited(path string, limit int64) ([]byte, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	f, err := os.OpenFile(path, openReadFlags, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err = f.Stat(); err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	_ = f.SetReadDeadline(time.Now().Add(readTimeout)) // os.ErrNoDeadline for ordinary files
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w (limit %d bytes)", path, errTooLarge, limit)
	}
	return data, nil
}

var errTooLarge = errors.New("file too large")

// readTimeout bounds a read of a pollable file (see readLimited).
const readTimeout = 5 * time.Second

// absPath makes p absolute and clean; if the working directory is gone it
// settles for clean.
func absPath(p string) string {
	if a, err := filepath.Abs(p); err == nil {
		return a
	}
	return filepath.Clean(p)
}
