//go:build unix

package config

import (
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestFIFOSecretAndRuleFile: a FIFO named as a secret or matched by
// rule_files is refused, not read (a read would wait for a writer forever).
func TestFIFOSecretAndRuleFile(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"secret", "rules.yaml"} {
		if err := syscall.Mkfifo(filepath.Join(dir, name), 0o600); err != nil {
			t.Skipf("mkfifo: %v", err)
		}
	}
	src := "accounts: [{name: a, exchange: binance-usdm, api_key_file: secret, api_secret: x}]\nrule_files: [\"*.yaml\"]\n"
	_, err := Parse(filepath.Join(dir, "config.yaml"), []byte(src), nil)
	for _, want := range []string{
		"accounts[0].api_key_file: cannot read the secret: " + filepath.Join(dir, "secret") + " is not a regular file",
		"rule_files[0]: cannot read rule file: " + filepath.Join(dir, "rules.yaml") + " is not a regular file",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if _, err := readLimited(filepath.Join(dir, "secret"), maxSecretSize); err == nil {
		t.Error("readLimited read a FIFO")
	}
}
