package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/user"
	"strings"
	"time"

	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/silence"
)

// controlTimeout bounds one call to the daemon: a write is stored in its
// database before it answers.
const controlTimeout = 10 * time.Second

// defaultSilence is how long `silence add` silences without -duration.
const defaultSilence = time.Hour

const silenceUsage = `Usage:
  marginwatch silence add [-config PATH] [-duration 1h] [-comment TEXT] [-author NAME] MATCHER...
  marginwatch silence list [-config PATH] [-json]
  marginwatch silence expire [-config PATH] ID

MATCHER is label=value, label!=value or label=~regexp, with label one of
account, rule, symbol, side, severity (e.g. rule=liquidation-near
symbol=BTCUSDT); every matcher must hold. -duration defaults to 1h, -author
to your user name. Silences live in the running daemon: these commands ask
its admin API on the config's listen address, with admin.token_file's token.
`

func cmdSilence(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, silenceUsage)
		return exitUsage
	}
	switch args[0] {
	case "add":
		return cmdSilenceAdd(args[1:], stdout, stderr)
	case "list", "ls":
		return cmdSilenceList(args[1:], stdout, stderr)
	case "expire", "rm":
		return cmdSilenceExpire(args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, silenceUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "marginwatch silence: unknown command %q\n\n%s", args[0], silenceUsage)
		return exitUsage
	}
}

func cmdSilenceAdd(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("silence add", stderr)
	duration := durationFlag(defaultSilence)
	fs.Var(&duration, "duration", "how long the silence lasts from now")
	comment := fs.String("comment", "", "why (shown in silence list and status)")
	author := fs.String("author", "", "who silences (default: your user name)")
	matchers, code, done := parseArgs(fs, args)
	if done {
		return code
	}
	if len(matchers) == 0 {
		fmt.Fprintf(stderr, "marginwatch silence add: no matcher: give at least one, e.g. rule=liquidation-near or symbol=BTCUSDT\n\n%s", silenceUsage)
		return exitUsage
	}
	if _, err := silence.ParseMatchers(matchers); err != nil {
		fmt.Fprintf(stderr, "marginwatch silence add: %v\n", err)
		return exitUsage
	}
	if duration <= 0 {
		fmt.Fprintf(stderr, "marginwatch silence add: -duration %s: want a positive duration such as 30m or 2h\n", &duration)
		return exitUsage
	}
	c, code := newControlClient(*path, stderr)
	if c == nil {
		return code
	}
	req := silenceRequest{Matchers: matchers, Duration: time.Duration(duration).String(), Author: *author, Comment: *comment}
	if req.Author == "" {
		req.Author = userName()
	}
	var s silenceJSON
	if err := c.call(http.MethodPost, silencesPath, req, &s); err != nil {
		fmt.Fprintf(stderr, "marginwatch silence add: %v\n", err)
		return exitFailure
	}
	fmt.Fprintln(stdout, s.ID)
	return exitOK
}

func cmdSilenceList(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("silence list", stderr)
	asJSON := fs.Bool("json", false, "print the daemon's JSON")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	c, code := newControlClient(*path, stderr)
	if c == nil {
		return code
	}
	var list silencesJSON
	if err := c.call(http.MethodGet, silencesPath, nil, &list); err != nil {
		fmt.Fprintf(stderr, "marginwatch silence list: %v\n", err)
		return exitFailure
	}
	if list.Silences == nil {
		list.Silences = []silenceJSON{}
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(list); err != nil {
			fmt.Fprintln(stderr, err)
			return exitFailure
		}
		return exitOK
	}
	p := &tablePrinter{w: stdout}
	p.silences(list.Silences, time.Now(), "")
	return exitOK
}

func cmdSilenceExpire(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("silence expire", stderr)
	ids, code, done := parseArgs(fs, args)
	if done {
		return code
	}
	if len(ids) != 1 {
		fmt.Fprintf(stderr, "marginwatch silence expire: give one silence ID (marginwatch silence list shows them)\n\n%s", silenceUsage)
		return exitUsage
	}
	c, code := newControlClient(*path, stderr)
	if c == nil {
		return code
	}
	var s silenceJSON
	if err := c.call(http.MethodDelete, silencesPath+"/"+url.PathEscape(ids[0]), nil, &s); err != nil {
		fmt.Fprintf(stderr, "marginwatch silence expire: %v\n", err)
		return exitFailure
	}
	fmt.Fprintf(stdout, "expired %s (%s)\n", s.ID, strings.Join(s.Matchers, " "))
	return exitOK
}

const ackUsage = `Usage:
  marginwatch ack [-config PATH] [-comment TEXT] [-author NAME] ALERT_ID

Acknowledges a firing alert (its id is in marginwatch status): its repeats
stop until its severity rises or it resolves. -author defaults to your user
name.
`

func cmdAck(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("ack", stderr)
	comment := fs.String("comment", "", "why, or what is being done")
	author := fs.String("author", "", "who acknowledges (default: your user name)")
	ids, code, done := parseArgs(fs, args)
	if done {
		return code
	}
	if len(ids) != 1 {
		fmt.Fprintf(stderr, "marginwatch ack: give one alert ID (marginwatch status shows the firing alerts' ids)\n\n%s", ackUsage)
		return exitUsage
	}
	c, code := newControlClient(*path, stderr)
	if c == nil {
		return code
	}
	req := ackRequest{Author: *author, Comment: *comment}
	if req.Author == "" {
		req.Author = userName()
	}
	var a ackedJSON
	if err := c.call(http.MethodPost, alertsPath+url.PathEscape(ids[0])+"/ack", req, &a); err != nil {
		fmt.Fprintf(stderr, "marginwatch ack: %v\n", err)
		return exitFailure
	}
	target := a.Account
	if a.Symbol != "" {
		target += " " + strings.TrimSpace(a.Symbol+" "+a.Side)
	}
	fmt.Fprintf(stdout, "acknowledged %s: %s %s on %s; its repeats stop until its severity rises or it resolves\n", a.ID, a.Severity, a.Rule, target)
	return exitOK
}

// durationFlag is a -duration whose default reads as written: "1h", not
// "1h0m0s".
type durationFlag time.Duration

func (d *durationFlag) String() string {
	s := time.Duration(*d).String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func (d *durationFlag) Set(s string) error {
	v, err := time.ParseDuration(s)
	if err != nil {
		return errors.New("want a duration such as 30m, 2h or 24h")
	}
	*d = durationFlag(v)
	return nil
}

// parseArgs parses flags and positional arguments in any order (`ack ID
// -comment x` as well as `ack -comment x ID`); after "--" everything is
// positional. done reports the exit code to return.
func parseArgs(fs *flag.FlagSet, args []string) (pos []string, code int, done bool) {
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, exitOK, true
			}
			return nil, exitUsage, true
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, 0, false
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), 0, false
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

// userName is who the user is, for a silence's or an ack's author: the
// user behind sudo, else $USER, else the OS's name for the process's user.
func userName() string {
	for _, v := range []string{"SUDO_USER", "USER"} {
		if s := os.Getenv(v); s != "" {
			return s
		}
	}
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	return "unknown"
}

// controlClient calls the running daemon's admin API.
type controlClient struct {
	listen, base, token string
	http                *http.Client
}

// newControlClient reads the config at path for the daemon's address and
// admin token. On failure it has said why on stderr and returns nil and
// the exit code.
func newControlClient(path string, stderr io.Writer) (*controlClient, int) {
	p := configPath(path)
	cfg, err := config.Load(p)
	if err != nil {
		fmt.Fprintln(stderr, err)
		if unreadable(err) {
			fmt.Fprintln(stderr, "a file the config names (the admin token, a key) is readable only by the daemon's user: run this command with sudo")
		}
		return nil, exitFailure
	}
	if cfg.Listen == "" {
		fmt.Fprintf(stderr, "%s: listen is \"\", so the daemon has no admin API to ask: silences and acks live in the running daemon; set listen: %s and reload it\n", p, config.DefaultListen)
		return nil, exitFailure
	}
	return &controlClient{listen: cfg.Listen, base: "http://" + dialAddr(cfg.Listen), token: cfg.Admin.Token.Reveal(),
		http: &http.Client{Timeout: controlTimeout, Transport: daemonTransport}}, exitOK
}

// unreadable reports whether a config error is a file the user may not
// read.
func unreadable(err error) bool {
	var es config.Errors
	if !errors.As(err, &es) {
		return false
	}
	for _, e := range es {
		if strings.Contains(e.Msg, "permission denied") {
			return true
		}
	}
	return false
}

// call sends body as JSON to the daemon and decodes its answer into out.
// A write (any method but GET) always goes as JSON, {} for a nil body,
// with the admin token as loaded; a read carries neither. The error says
// what to do: start the daemon, fix the token, or what the daemon found
// wrong with the request.
func (c *controlClient) call(method, path string, body, out any) error {
	write := method != http.MethodGet
	var r io.Reader
	if write {
		b := []byte("{}")
		if body != nil {
			var err error
			if b, err = json.Marshal(body); err != nil {
				return err
			}
		}
		r = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), controlTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return fmt.Errorf("listen %q: %w", c.listen, err)
	}
	if write {
		req.Header.Set("Content-Type", "application/json")
		if c.token != "" {
			req.Header.Set("Authorization", "Bearer "+c.token)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("no marginwatch daemon answers on %s: silences and acks live in the running daemon; start it with systemctl start marginwatch (%s)", c.listen, briefNetError(err))
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxStatusBytes))
	if err != nil {
		return fmt.Errorf("the daemon at %s: reading its answer: %s", c.listen, briefNetError(err))
	}
	if resp.StatusCode/100 != 2 {
		var e apiError
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			// An older daemon without this endpoint answers /metrics' 404.
			return fmt.Errorf("the daemon at %s has no %s %s (%s): is it an older marginwatch? upgrade and restart it", c.listen, method, path, resp.Status)
		}
		if resp.StatusCode == http.StatusUnauthorized {
			if c.token == "" {
				return fmt.Errorf("the daemon at %s wants the admin token: %s (set admin.token_file in this config to the daemon's token file)", c.listen, e.Error)
			}
			return fmt.Errorf("the daemon at %s refused the admin token: %s (is this the daemon's config? it reads the token again when reloaded)", c.listen, e.Error)
		}
		return fmt.Errorf("%s", e.Error)
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("the daemon at %s answered something else than JSON: %v", c.listen, err)
	}
	return nil
}
