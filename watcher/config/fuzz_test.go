package config

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// FuzzLoad feeds arbitrary bytes to Parse: it must never panic, and must
// return exactly one of a config and an error (of type Errors); a config's
// Warnings must not panic either.
//
// The config is parsed as /fuzz/config.yaml over an in-memory file system
// holding testdata's rule files and secrets: a path the fuzzer makes up
// (a FIFO, /dev/zero, /proc/...) must never reach the real disk.
func FuzzLoad(f *testing.F) {
	seeds, err := filepath.Glob("testdata/*.yaml")
	if err != nil {
		f.Fatal(err)
	}
	more, _ := filepath.Glob("testdata/rules.d/*.yaml")
	warn, _ := filepath.Glob("testdata/warnings/*.yaml")
	more = append(more, warn...)
	for _, p := range append(seeds, more...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("rules: [{<<: [*a], name: r}]\nx-a: &a {metric: leverage}\n"))
	f.Add([]byte("digests: [{name: d, schedule: \"CRON_TZ=UTC\"}]\n"))
	f.Add([]byte("mute_windows: [{name: w, schedule: \"CRON_TZ=UTC 0 0 * * SAT\", duration: 48h, matchers: [\"symbol=~\\\"BTC.*\\\"\", rule=x]}]\n"))
	f.Add([]byte("rule_files: [rules.d/*.yaml, /fuzz/*/*]\naccounts: [{name: a, exchange: binance-usdm, api_key_file: secrets, api_secret_file: /fuzz/secrets/coin-key}]\n"))
	env := envOf(map[string]string{
		"BINANCE_API_KEY":       "k: #v",
		"CREDENTIALS_DIRECTORY": "secrets",
		"EMPTY":                 "",
	})
	fsys := memFiles{testFS(f)}
	defaultFlag(f, "test.fuzzminimizetime", "1s")
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := parse("/fuzz/config.yaml", data, env, fsys)
		if (cfg == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v; want exactly one", cfg != nil, err)
		}
		if err != nil {
			var es Errors
			if !errors.As(err, &es) || len(es) == 0 {
				t.Fatalf("error %T %q is not a non-empty config.Errors", err, err)
			}
			return
		}
		for _, w := range cfg.Warnings() {
			if w.File == "" || w.Msg == "" {
				t.Fatalf("warning %q names no file or says nothing", w)
			}
		}
	})
}

// defaultFlag sets the flag name to value unless the command line set it.
//
// FuzzLoad uses it to bound the minimization of new corpus entries. Go's
// minimizer calls the fuzz function O(n²) times for an n-byte input (it
// tries removing every range of bytes): a 500-byte mutant of a testdata seed
// takes 100,000+ Parses, and at the default limit of 60s per input a worker
// minimizing it fuzzes nothing meanwhile, which with every worker at it
// shows as "execs: N (0/sec)". -fuzzminimizetime on the command line still
// wins, e.g. to minimize a crasher further.
func defaultFlag(tb testing.TB, name, value string) {
	tb.Helper()
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	if set || flag.Lookup(name) == nil {
		return
	}
	if err := flag.Set(name, value); err != nil {
		tb.Fatal(err)
	}
}

// testFS returns an in-memory copy of testdata's rule files and secrets
// under /fuzz, where the fuzz target's config lives.
func testFS(tb testing.TB) fstest.MapFS {
	tb.Helper()
	m := fstest.MapFS{}
	for _, dir := range []string{"rules.d", "secrets"} {
		entries, err := os.ReadDir(filepath.Join("testdata", dir))
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range entries {
			data, err := os.ReadFile(filepath.Join("testdata", dir, e.Name()))
			if err != nil {
				tb.Fatal(err)
			}
			mode := fs.FileMode(0o600)
			if e.Name() == "telegram-token" {
				mode = 0o644 // one readable secret, to fuzz its warning
			}
			m[path.Join("fuzz", dir, e.Name())] = &fstest.MapFile{Data: data, Mode: mode}
		}
	}
	return m
}

// memFiles is a files over an in-memory file system, whose root is "/".
type memFiles struct{ fsys fs.FS }

// memPath turns an absolute path into a name of fs.FS; ok is false for a
// path outside it (a relative one).
func memPath(p string) (name string, ok bool) {
	p = filepath.ToSlash(filepath.Clean(p))
	if !strings.HasPrefix(p, "/") {
		return "", false
	}
	if name = strings.TrimPrefix(p, "/"); name == "" {
		name = "."
	}
	return name, fs.ValidPath(name)
}

func (m memFiles) glob(pattern string) ([]string, error) {
	name, ok := memPath(pattern)
	if !ok {
		return nil, nil
	}
	matches, err := fs.Glob(m.fsys, name)
	for i := range matches {
		matches[i] = filepath.FromSlash("/" + matches[i])
	}
	return matches, err
}

func (m memFiles) mode(p string) (fs.FileMode, bool) {
	name, ok := memPath(p)
	if !ok {
		return 0, false
	}
	fi, err := fs.Stat(m.fsys, name)
	if err != nil {
		return 0, false
	}
	return fi.Mode(), true
}

func (m memFiles) read(p string, limit int64) ([]byte, error) {
	name, ok := memPath(p)
	if !ok {
		return nil, &fs.PathError{Op: "stat", Path: p, Err: fs.ErrNotExist}
	}
	fi, err := fs.Stat(m.fsys, name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", p)
	}
	data, err := fs.ReadFile(m.fsys, name)
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%s: %w (limit %d bytes)", p, errTooLarge, limit)
	}
	return data, nil
}
