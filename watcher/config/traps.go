package config

// Traps: configs that load but leave the trader unprotected while every
// check says "ok" — a symbol in a form the exchange never reports, a $NAME
// used as written, a rule_files glob that matches nothing, a secret file
// others can read, the admin port on the network without a token, alerts only on a console
// nobody watches. Each is an error or a warning naming the fix.

import (
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"unicode"

	"gopkg.in/yaml.v3"
)

// checkRuleTraps checks what a rule says that can never match or fire.
func checkRuleTraps(r *Rule, c *collector) {
	checkSymbols(r.At, r.Symbols, c)
	checkThresholdRanges(r, c)
}

// checkSymbols reports symbols not in the exchange's form: Binance names
// every symbol in upper case without separators (BTCUSDT; COIN-M and
// delivery contracts add an underscore suffix: BTCUSD_PERP), and a rule
// compares symbols exactly, so "btcusdt" or "BTC-USDT" would never match.
func checkSymbols(l Location, symbols []string, c *collector) {
	for i, s := range symbols {
		field := fmt.Sprintf("symbols[%d]", i)
		fixed := fixSymbol(s)
		switch {
		case fixed == "":
			c.add(l.Errorf(field, "%q is not a symbol (e.g. BTCUSDT)", s))
		case fixed != s:
			c.add(l.Errorf(field, "%q never matches: Binance writes symbols in upper case without separators; write %q", s, fixed))
		}
	}
}

// fixSymbol returns s in Binance's form: a TradingView-style exchange
// prefix ("BINANCE:") and perpetual suffix (".P") dropped, separators and
// spaces removed, ASCII letters upper-cased. Other letters stay: Binance
// lists symbols such as 币安人生USDT.
func fixSymbol(s string) string {
	if i := strings.LastIndexByte(s, ':'); i >= 0 {
		s = s[i+1:]
	}
	if strings.HasSuffix(s, ".P") || strings.HasSuffix(s, ".p") {
		s = s[:len(s)-2]
	}
	// COIN-M: BTCUSD_PERP, BTCUSD_250627; a dash or slash there is an
	// underscore, not nothing.
	if m := coinmSuffixRE.FindStringSubmatch(s); m != nil {
		return fixSymbol(m[1]) + "_" + strings.ToUpper(m[2])
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r == '-' || r == '/' || unicode.IsSpace(r):
			return -1
		case 'a' <= r && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
}

var (
	coinmSuffixRE = regexp.MustCompile(`^(.+?)[-/ ]((?i:perp)|[0-9]{6})$`)
	secretType    = reflect.TypeFor[Secret]()
	// bareVarRE is a value that is one $NAME and nothing else.
	bareVarRE = regexp.MustCompile(`^\$[A-Za-z_][A-Za-z0-9_]*$`)
)

// bareVariable reports (and returns true for) a string value written as
// $NAME, which is used as written: only ${NAME} expands. A secret is never
// quoted back (the value may be a real password that starts with $). A $
// inside a longer secret is left alone: it is used as written, which is
// what a password such as "Tr0ub4dor$ecure" means.
func (d *decoder) bareVariable(n *yaml.Node, path string, secret bool) bool {
	if n.Kind != yaml.ScalarNode || !bareVarRE.MatchString(n.Value) {
		return false
	}
	v := n.Value
	if secret {
		d.errAt(n, path, "is a $ followed by a name, which is used as written, not expanded: write ${NAME} to read an environment variable (e.g. ${BINANCE_API_KEY}), or start it with $$ for a literal $")
		return true
	}
	d.errAt(n, path, "%s is used as written, not expanded: write \"${%s}\" to read the environment variable (or $%s for a literal $)", v, v[1:], v)
	return true
}

// unmatchedGlob is a rule_files entry that matched no file.
type unmatchedGlob struct {
	field, pattern, path string // path: the pattern as looked for
}

// checkUnmatchedRuleFiles judges the rule_files entries that matched no
// file, once every rule file is read:
//   - a path without wildcards names a file that is not there: an error;
//   - a wildcard pattern matching nothing, when the config is left with no
//     rules at all, is an error too: every user rule would be silently gone
//     and only data-stale would watch (write `rules: []` to mean it);
//   - otherwise a wildcard matching nothing is a warning (an empty rules.d
//     folder can be meant).
func checkUnmatchedRuleFiles(cfg *Config, missed []unmatchedGlob, c *collector) {
	for _, m := range missed {
		looked := ""
		if m.path != m.pattern {
			looked = " (looked for " + m.path + ")"
		}
		switch {
		case !strings.ContainsAny(m.pattern, `*?[\`):
			c.add(cfg.At.Errorf(m.field, "no such file %s: fix the path (a relative one is relative to the config file's folder) or remove it", m.path))
		case len(cfg.Rules) == 0 && !cfg.At.written("rules"):
			c.add(cfg.At.Errorf(m.field, "%q matches no file%s and the config has no other rules, so only the built-in data-stale rule would watch; fix the pattern (a relative one is relative to the config file's folder), or write rules: [] to run without rules on purpose", m.pattern, looked))
		default:
			cfg.warned = append(cfg.warned, cfg.At.warnf(m.field, "%q matches no file%s: no rules are read from it; fix the pattern or remove it", m.pattern, looked))
		}
	}
}

// modeFiles is a files that can tell a file's mode without reading it.
type modeFiles interface {
	mode(path string) (fs.FileMode, bool)
}

func (osFiles) mode(path string) (fs.FileMode, bool) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, false
	}
	return fi.Mode(), true
}

// secretFile is one *_file key whose secret was read.
type secretFile struct {
	at   Location
	key  string // e.g. api_secret_file
	path string // absolute
}

// secretFiles lists the *_file keys of cfg whose secret was read.
func secretFiles(cfg *Config) []secretFile {
	var out []secretFile
	add := func(l Location, name string, val Secret, file string) {
		if l.written(name+"_file") && !l.written(name) && val != "" {
			out = append(out, secretFile{l, name + "_file", file})
		}
	}
	add(cfg.At, "heartbeat_url", cfg.HeartbeatURL, cfg.HeartbeatURLFile)
	add(cfg.Admin.At, "token", cfg.Admin.Token, cfg.Admin.TokenFile)
	for i := range cfg.Accounts {
		a := &cfg.Accounts[i]
		if a.Exchange != "simulated" {
			add(a.At, "api_key", a.APIKey, a.APIKeyFile)
			add(a.At, "api_secret", a.APISecret, a.APISecretFile)
		}
	}
	for i := range cfg.Notifiers {
		n := &cfg.Notifiers[i]
		for _, s := range []struct {
			key  string
			val  Secret
			file string
		}{
			{"webhook_url", n.WebhookURL, n.WebhookURLFile},
			{"token", n.Token, n.TokenFile},
			{"password", n.Password, n.PasswordFile},
			{"url", n.URL, n.URLFile},
			{"secret", n.Secret, n.SecretFile},
		} {
			if slices.Contains(notifierFields[n.Type], s.key+"_file") {
				add(n.At, s.key, s.val, s.file)
			}
		}
	}
	return out
}

// warnReadableSecrets warns about secret files that other users of the
// machine can read: the file readable by group or others, and its folder
// open to them. A file in a folder only its owner can enter is safe
// whatever its own mode, which covers systemd credentials
// (${CREDENTIALS_DIRECTORY}) and /etc/credstore (0700).
func warnReadableSecrets(cfg *Config, fsys files) {
	mf, ok := fsys.(modeFiles)
	if !ok {
		return
	}
	for _, s := range secretFiles(cfg) {
		fm, ok1 := mf.mode(s.path)
		dm, ok2 := mf.mode(filepath.Dir(s.path))
		if !ok1 || !ok2 {
			continue
		}
		f, d := fm.Perm(), dm.Perm()
		if f&0o004 != 0 && d&0o001 != 0 || f&0o040 != 0 && d&0o010 != 0 {
			cfg.warned = append(cfg.warned, s.at.warnf(s.key, "%s can be read by other users of this machine (mode %04o): chmod 600 %s", s.path, f, s.path))
		}
	}
}

// trapWarnings are the warnings Warnings adds about the config as a whole.
func (c *Config) trapWarnings() []Warning {
	ws := slices.Clone(c.warned)
	if w, ok := c.ConsoleOnly(); ok {
		ws = append(ws, w)
	}
	ws = append(ws, c.muteWindowWarnings()...)
	if w, ok := c.hyperliquidStreamWarning(); ok {
		ws = append(ws, w)
	}
	return ws
}

// checkListen refuses a `listen` address other machines can reach while
// no admin token is set: the admin API's writes (silences, acks) would
// take orders from anyone who reaches the port, and /metrics tells account
// names, equity and positions. A token_file that could not be read is
// reported by readSecrets; saying it again here would only add noise.
func checkListen(cfg *Config, c *collector) {
	a := &cfg.Admin
	if cfg.Listen == "" || a.tokenSet() || a.At.written("token") || a.At.written("token_file") || IsLoopbackListen(cfg.Listen) {
		return
	}
	host, port, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return // validate reports it
	}
	where := "to the network"
	if host == "" || host == "0.0.0.0" || host == "::" {
		where = "on every network interface"
	}
	c.add(cfg.At.Errorf("listen", "%q serves the admin API (silences, acks), /metrics and /healthz %s without authentication: anyone who reaches the port could silence your alerts and reads account names, equity and positions; use 127.0.0.1:%s (this machine only), or set admin.token_file (and firewall the port)", cfg.Listen, where, port))
}

// IsLoopbackListen reports whether a `listen` address (host:port) is
// reachable from this machine only: localhost, 127.0.0.0/8 or ::1. An
// empty or unspecified host (":9464", "0.0.0.0:9464") is every interface.
func IsLoopbackListen(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	return err == nil && isLoopbackHost(host)
}

// ConsoleOnly returns a warning when alerts reach nobody under systemd:
// every notifier is console (or there is none) while a real exchange
// account is watched. A console's lines go to the journal there. `check`
// prints it with the other warnings; `run` logs it only under systemd (in
// a terminal the console is seen). A config of simulated accounts only
// (the demo) is left alone.
func (c *Config) ConsoleOnly() (Warning, bool) {
	real := slices.ContainsFunc(c.Accounts, func(a Account) bool { return a.Exchange != "simulated" })
	console := !slices.ContainsFunc(c.Notifiers, func(n Notifier) bool { return n.Type != "console" })
	if !real || !console {
		return Warning{}, false
	}
	if len(c.Notifiers) == 0 {
		return c.At.warnf("notifiers", "no notifiers: nobody is told of an alert; add a telegram, slack, email or webhook notifier"), true
	}
	return c.At.warnf("notifiers", "console only: under systemd nobody sees it (its lines go to the journal); add a telegram, slack, email or webhook notifier"), true
}
