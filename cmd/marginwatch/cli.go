package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"golang.org/x/term"

	"github.com/marginwatch/marginwatch/watcher"
	"github.com/marginwatch/marginwatch/watcher/config"
	"github.com/marginwatch/marginwatch/watcher/rules"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = "dev"

// Exit codes (SPEC.md): 0 ok, 1 a failure the user must fix, 2 usage error.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
	// exitConfig (EX_CONFIG) is what `run` exits with when it refuses to
	// start on something only the user can fix: an invalid config, a key
	// with forbidden permissions. The unit's RestartPreventExitStatus=78
	// keeps systemd from restarting it in a loop.
	exitConfig = 78
)

const defaultConfigPath = "/etc/marginwatch/config.yaml"

const usage = `marginwatch watches leveraged futures accounts and warns before liquidation.

Usage:
  marginwatch run     [-config PATH] [-log-format text|json]   run the daemon in the foreground
  marginwatch check   [-config PATH]                           validate config and rules
  marginwatch status  [-config PATH] [-json]                   the daemon's live view (else one poll of every account)
  marginwatch test    [-run REGEX] [-v] FILE...                run rule unit tests (README "Testing rules")
  marginwatch notify-test [-config PATH] [-notifier NAME]      send a test alert through each (or one) notifier
  marginwatch silence add [-config PATH] [-duration 1h] [-comment TEXT] [-author NAME] MATCHER...
                                                               silence matching alerts (default 1h); prints its id
  marginwatch silence list [-config PATH] [-json]              list the silences in force or to come
  marginwatch silence expire [-config PATH] ID                 end a silence now
  marginwatch ack [-config PATH] [-comment TEXT] ALERT_ID      stop a firing alert's repeats until it gets worse
  marginwatch version                                          print version information

MATCHER is label=value, label!=value or label=~regexp on account, rule,
symbol, side or severity; silence and ack ask the running daemon's admin API
on listen. The config path is -config, else $MARGINWATCH_CONFIG, else
` + defaultConfigPath + `.
Exit codes: 0 ok, 1 failure to fix, 2 usage error.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "run":
		return cmdRun(rest, stdout, stderr)
	case "check":
		return cmdCheck(rest, stdout, stderr)
	case "status":
		return cmdStatus(rest, stdout, stderr)
	case "test":
		return cmdTest(rest, stdout, stderr)
	case "notify-test":
		return cmdNotifyTest(rest, stdout, stderr)
	case "silence":
		return cmdSilence(rest, stdout, stderr)
	case "ack":
		return cmdAck(rest, stdout, stderr)
	case "version", "-version", "--version":
		return cmdVersion(stdout)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "marginwatch: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}

// newFlags returns a flag set for a subcommand with the common -config flag.
func newFlags(name string, stderr io.Writer) (*flag.FlagSet, *string) {
	fs := flag.NewFlagSet("marginwatch "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("config", "", "config file (default $MARGINWATCH_CONFIG, else "+defaultConfigPath+")")
	return fs, path
}

// parseFlags parses args and reports the exit code to return, if any.
func parseFlags(fs *flag.FlagSet, args []string) (int, bool) {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK, true
		}
		return exitUsage, true
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "%s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		if fs.Lookup("config") != nil {
			// `check config.yaml` is the common slip: the path is a flag.
			fmt.Fprintf(fs.Output(), "the config file is given with -config: %s -config %s\n", fs.Name(), fs.Arg(0))
		}
		return exitUsage, true
	}
	return 0, false
}

func configPath(flagValue string) string {
	if flagValue != "" {
		return flagValue
	}
	if p := os.Getenv("MARGINWATCH_CONFIG"); p != "" {
		return p
	}
	return defaultConfigPath
}

// load reads, validates and compiles the configuration. Its error lists
// every problem, one "file:line:col: message" per line.
func load(path string) (*config.Config, []*rules.Rule, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, nil, err
	}
	compiled, err := rules.Compile(cfg)
	if err != nil {
		return nil, nil, err
	}
	return cfg, compiled, nil
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	fs, path := newFlags("check", stderr)
	if code, done := parseFlags(fs, args); done {
		return code
	}
	p := configPath(*path)
	cfg, compiled, err := load(p)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFailure
	}
	// Build every notifier as the daemon would (no network): what only a
	// constructor can judge, like a whsec_ secret that is not base64, is a
	// check error too, not a start-up surprise.
	var errs config.Errors
	for _, n := range cfg.Notifiers {
		if _, err := watcher.NewTarget(n, watcher.NotifierEnv{}); err != nil {
			errs = append(errs, n.At.Errorf("", "%v", err))
		}
	}
	if len(errs) > 0 {
		fmt.Fprintln(stderr, errs)
		return exitFailure
	}
	// Warnings are about a config that runs but will not do all it seems
	// to say; they go with the result and leave the exit code at 0.
	warnings := cfg.Warnings()
	for _, w := range warnings {
		fmt.Fprintln(stdout, w)
	}
	var warned string
	switch len(warnings) {
	case 0:
	case 1:
		warned = ", 1 warning"
	default:
		warned = fmt.Sprintf(", %d warnings", len(warnings))
	}
	builtIn := builtInRules(cfg, compiled)
	fmt.Fprintf(stdout, "%s: ok: %d accounts, %d notifiers, %d rules (%d built in), %d files read%s\n",
		p, len(cfg.Accounts), len(cfg.Notifiers), len(cfg.Rules)+builtIn, builtIn, len(cfg.Files), warned)
	if len(cfg.Accounts) == 0 {
		fmt.Fprintln(stdout, "note: no accounts: this file is fine as a rule file, but `run` needs at least one account")
	}
	// The request budgets, from each account's estimated cost (3 symbols
	// held): what `run` will plan before it knows the positions.
	plan := watcher.PlanConfig(cfg, time.Now())
	for _, b := range plan.Budgets {
		fmt.Fprintln(stdout, b)
		if b.Message != "" {
			fmt.Fprintln(stdout, "warning:", b.Message)
		}
	}
	return exitOK
}

// builtInRules counts the built-in rules among compiled: each once, though
// Compile makes one data-stale rule per account.
func builtInRules(cfg *config.Config, compiled []*rules.Rule) int {
	user := make(map[string]bool, len(cfg.Rules))
	for i := range cfg.Rules {
		user[cfg.Rules[i].Name] = true
	}
	seen := make(map[string]bool)
	for _, r := range compiled {
		if !user[r.Name] {
			seen[r.Name] = true
		}
	}
	return len(seen)
}

// newLogger returns the daemon's logger. Under journald (JOURNAL_STREAM set)
// the journal stamps every line, so ours would be a duplicate: drop it.
func newLogger(format string, w io.Writer) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{}
	if os.Getenv("JOURNAL_STREAM") != "" {
		opts.ReplaceAttr = func(groups []string, a slog.Attr) slog.Attr {
			if len(groups) == 0 && a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}
	}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("-log-format %q: use text or json", format)
	}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func cmdVersion(stdout io.Writer) int {
	commit := "unknown"
	if info, ok := debug.ReadBuildInfo(); ok {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				commit = s.Value
			}
		}
	}
	fmt.Fprintf(stdout, "marginwatch %s (commit %s, %s %s/%s)\n", version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return exitOK
}
