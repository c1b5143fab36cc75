package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The tests here are regressions for inputs that made Parse slow enough to
// stall FuzzLoad, or panic. They assert on results; one that hangs again fails
// by the go test timeout.

// TestRepeatWithoutSeverities: a repeat: on a rule that has no severity
// panicked (oneOf of no choices) instead of reporting the rule.
func TestRepeatWithoutSeverities(t *testing.T) {
	tests := []struct{ src, want string }{
		{"rules: [{name: x, metric: leverage, repeat: {critical: 1h}}]",
			"c.yaml:1:9: rules[0]: needs thresholds: above or below, e.g. below: {warning: 15, critical: 7}"},
		{"rules:\n  - repeat: {critical: []}", "c.yaml:2:24: rules[0].repeat.critical: must be a single value, not a list"},
	}
	for _, tt := range tests {
		_, err := Parse("c.yaml", []byte(tt.src), nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) = %v, want an error containing %q", tt.src, err, tt.want)
		}
	}
	if got := oneOf(nil); got != "none" {
		t.Errorf("oneOf(nil) = %q", got)
	}
}

// TestOversizeFile: a config or rule file over 1 MiB is refused before it
// is parsed.
func TestOversizeFile(t *testing.T) {
	big := bytes.Repeat([]byte("# comment\n"), maxConfigSize/10+1)
	want := fmt.Sprintf("big.yaml: the file is %d bytes: a config or rule file may be at most 1048576 (1 MiB); is it the right file?", len(big))
	if _, err := Parse("big.yaml", big, nil); err == nil || err.Error() != want {
		t.Errorf("Parse: %v\nwant %s", err, want)
	}
	if _, err := ParseRules("big.yaml", big, nil); err == nil || err.Error() != want {
		t.Errorf("ParseRules: %v\nwant %s", err, want)
	}
	if _, err := Parse("ok.yaml", big[:maxConfigSize], nil); err != nil {
		t.Errorf("Parse of exactly 1 MiB of comments: %v", err)
	}

	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(path, big, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), "file too large (limit 1048576 bytes)") {
		t.Errorf("Load: %v", err)
	}
	// A rule file is held to the same limit.
	if err := os.WriteFile(filepath.Join(dir, "rules.yaml"), big, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Parse(path, []byte("rule_files: [rules.yaml]\n"), nil)
	if err == nil || !strings.Contains(err.Error(), "rule_files[0]: cannot read rule file") || !strings.Contains(err.Error(), "file too large") {
		t.Errorf("Parse with a big rule file: %v", err)
	}
}

// firstBadLineLinear is the exact search firstBadLine approximates: every
// prefix of whole lines, from the end, with no bound on the work.
func firstBadLineLinear(data []byte) int {
	lines := bytes.SplitAfter(data, []byte("\n"))
	end := len(data)
	for k := len(lines) - 1; k >= 0; k-- {
		end -= len(lines[k])
		if parses(data[:end]) {
			return k + 1
		}
	}
	return 0
}

// TestFirstBadLine: the line of a syntax error is found in O(log lines)
// parses, and is the exact line where no multi-line value is in the way.
// It re-parsed every prefix: quadratic, and at the fuzzer's instrumented
// speed up to a quarter second per input.
func TestFirstBadLine(t *testing.T) {
	var body strings.Builder
	for i := range 600 {
		fmt.Fprintf(&body, "k%d: %s\n", i, strings.Repeat("v", 100))
	}
	lines := strings.SplitAfter(body.String(), "\n")
	at := func(n int, bad string) string { // bad replaces line n (1-based)
		return strings.Join(lines[:n-1], "") + bad + strings.Join(lines[n:], "")
	}
	tests := []struct {
		name string
		src  string
		want int
	}{
		{"bad indent near the end", at(598, "  x: y\n"), 598},
		{"bad indent in the middle", at(300, "  x: y\n"), 300},
		{"bad indent near the start", at(2, "  x: y\n"), 2},
		{"unclosed list at the start", at(1, "k: [\n"), 1},
		{"unclosed quote at the start", at(1, "k: \"\n"), 0},
		{"tab in the middle", at(250, "\tx: y\n"), 250},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data := []byte(tt.src)
			if parses(data) {
				t.Fatal("the test input parses")
			}
			got := firstBadLine(data)
			if tt.want != 0 && got != tt.want {
				t.Errorf("firstBadLine = %d, want %d", got, tt.want)
			}
			if tt.want != 0 {
				if exact := firstBadLineLinear(data); exact != got {
					t.Errorf("firstBadLine = %d, the exact search says %d", got, exact)
				}
			}
			if _, err := Parse("c.yaml", data, nil); err == nil || !strings.Contains(err.Error(), "YAML syntax") {
				t.Errorf("Parse: %v", err)
			}
		})
	}
	// Over 128 KiB the line is yaml.v3's own, found without re-parsing.
	huge := []byte("k: \"\n" + strings.Repeat(strings.Repeat("v", 100)+"\n", 1500))
	if got := firstBadLine(huge); got != 0 {
		t.Errorf("firstBadLine of %d bytes = %d, want 0", len(huge), got)
	}
}

// TestSuggestBounded: "did you mean" compared every unknown name with every
// candidate, at the product of their lengths: 200 references to unknown
// 1000-byte notifier names took minutes. Long strings are not compared and
// a budget bounds the rest; the listing of candidates is cut short.
func TestSuggestBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("notifiers:\n")
	for i := range 200 {
		fmt.Fprintf(&b, "  - {name: %s%d, type: console}\n", strings.Repeat("n", 1000), i)
	}
	b.WriteString("rules:\n  - {name: r, metric: leverage, above: {warning: 1}, notify: [")
	for range 200 {
		b.WriteString(strings.Repeat("n", 1003) + ", ")
	}
	b.WriteString("]}\n")
	_, err := Parse("c.yaml", []byte(b.String()), nil)
	var es Errors
	if !errors.As(err, &es) || len(es) != 200 {
		t.Fatalf("want 200 errors, got %d: %.300v", len(es), err)
	}
	for _, e := range es {
		if strings.Contains(e.Msg, "did you mean") || !strings.HasSuffix(e.Msg, " and 180 more)") {
			t.Fatalf("error %.200q... want the first 20 names listed and no suggestion", e.Msg)
		}
	}

	// Many short unknown names against many candidates: the candidates are
	// sorted once, suggestions stop at the budget, and every error is still
	// reported.
	b.Reset()
	b.WriteString("notifiers:\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "  - {name: notifier-%d, type: console}\n", i)
	}
	b.WriteString("rules:\n")
	for i := range 2000 {
		fmt.Fprintf(&b, "  - {name: r%d, metric: leverage, above: {warning: 1}, notify: [zz%d]}\n", i, i)
	}
	_, err = Parse("c.yaml", []byte(b.String()), nil)
	if !errors.As(err, &es) || len(es) != 2000 {
		t.Fatalf("want 2000 errors, got %d", len(es))
	}
	if want := `c.yaml:5003:64: rules[0].notify[0]: unknown notifier "zz0" (configured: notifier-0, notifier-1, notifier-10,`; !strings.HasPrefix(es[0].Error(), want) || !strings.HasSuffix(es[0].Msg, "and 4980 more)") {
		t.Errorf("first error %q", es[0])
	}

	// A long unknown key is not compared with the known keys.
	long := "x" + strings.Repeat("listen", 100_000)
	_, err = Parse("c.yaml", []byte("? "+long+"\n: x\n"), nil)
	if err == nil || strings.Contains(err.Error(), "did you mean") || !strings.Contains(err.Error(), "(known keys: state_dir,") {
		t.Errorf("long key: %.200v", err)
	}
	// Short typos are still suggested.
	if got := suggest("listne", []string{"state_dir", "listen"}); got != "listen" {
		t.Errorf("suggest(listne) = %q", got)
	}
	c := &collector{suggested: suggestBudget}
	if got := c.suggest("listne", []string{"listen"}); got != "" {
		t.Errorf("suggest past the budget = %q, want none", got)
	}
}

// TestRuleFilesFanOut: rule_files may match at most maxRuleFiles files.
func TestRuleFilesFanOut(t *testing.T) {
	dir := t.TempDir()
	for i := range maxRuleFiles + 1 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("r%04d.yaml", i)), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	_, err := Parse(filepath.Join(dir, "config.yaml"), []byte("rule_files: [\"*.yaml\"]\n"), nil)
	want := `rule_files[0]: "*.yaml" matches too many files: rule_files may name at most 1000 files in all; is the pattern right?`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Parse: %v\nwant %s", err, want)
	}
}

// TestMemFiles: the fuzz target's file system never reaches the disk, and
// refuses what readLimited refuses.
func TestMemFiles(t *testing.T) {
	src := `
heartbeat_url_file: /etc/hostname
accounts:
  - {name: a, exchange: binance-usdm, api_key_file: /dev/zero, api_secret_file: secrets}
  - {name: b, exchange: binance-usdm, api_key_file: /proc/self/status, api_secret_file: secrets/coin-key}
rule_files: ["/etc/*", "/proc/self/*", "rules.d/*.yaml"]
`
	_, err := parse("/fuzz/config.yaml", []byte(src), nil, memFiles{testFS(t)})
	for _, want := range []string{
		"heartbeat_url_file: cannot read the secret: open etc/hostname: file does not exist",
		"accounts[0].api_key_file: cannot read the secret: open dev/zero: file does not exist",
		"accounts[0].api_secret_file: cannot read the secret: /fuzz/secrets is not a regular file",
		"accounts[1].api_key_file: cannot read the secret: open proc/self/status: file does not exist",
		`/fuzz/rules.d/b.yaml:6:14: rules[0].notify[0]: unknown notifier "term"`,
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "accounts[1].api_secret_file") {
		t.Errorf("the in-memory secret was not read: %v", err)
	}
}

// TestYAMLLimits: shapes that are slow in some YAML parsers finish, with an
// error or a config, on inputs near the size limit.
func TestYAMLLimits(t *testing.T) {
	const n = maxConfigSize - 64
	var chain strings.Builder
	chain.WriteString("x-0: &a0 {metric: leverage}\nrules:\n")
	for i := 1; chain.Len() < n/2; i++ {
		fmt.Fprintf(&chain, "  - {<<: [*a0, *a0, *a0, *a0], name: r%d, above: {warning: 1}}\n", i)
	}
	tests := []struct{ name, src, want string }{
		{"deep flow lists", strings.Repeat("[", n), "exceeded max depth"},
		{"deep flow mappings", strings.Repeat("{a: ", n/4), "exceeded max depth"},
		{"deep block lists", strings.Repeat("- ", n/2), "exceeded max depth"},
		{"long flow list", "rules: [" + strings.Repeat("a, ", 100_000) + "]", "rules[99999]: must be a mapping"},
		{"long plain scalar", "listen: " + strings.Repeat("a", n-10), "listen: \"aaaa"},
		{"documents", strings.Repeat("---\n", n/4), "a second YAML document"},
		{"unclosed quote", "listen: \"" + strings.Repeat("x\n", n/2), "YAML syntax"},
		{"merged aliases", chain.String(), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("c.yaml", []byte(tt.src), nil)
			if tt.want == "" {
				if err != nil {
					t.Errorf("Parse: %.300v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Parse: %.300v\nwant %q", err, tt.want)
			}
		})
	}
}
