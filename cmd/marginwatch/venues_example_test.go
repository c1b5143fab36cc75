package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCheckVenuesExample: examples/venues.yaml (Binance, Hyperliquid and
// Bybit, secrets from the environment and credential files) passes check
// once its secrets are in place, and check refuses it while one is missing.
func TestCheckVenuesExample(t *testing.T) {
	const path = "../../examples/venues.yaml"
	creds := t.TempDir()
	for _, name := range []string{"marginwatch.binance-secret", "marginwatch.bybit-secret", "marginwatch.telegram-token"} {
		if err := os.WriteFile(filepath.Join(creds, name), []byte("s3cr3t\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	t.Setenv("BINANCE_API_KEY", "binance-key")
	t.Setenv("BYBIT_API_KEY", "bybit-key")
	code, out, errOut := runCLI("check", "-config", path)
	if code != exitOK || !strings.Contains(out, "ok: 3 accounts") {
		t.Fatalf("check: exit %d\n%s%s", code, out, errOut)
	}
	for _, venue := range []string{"budget binance-usdm", "budget hyperliquid", "budget bybit"} {
		if !strings.Contains(out, venue) {
			t.Errorf("check does not plan the %s request budget:\n%s", strings.TrimPrefix(venue, "budget "), out)
		}
	}

	os.Unsetenv("BYBIT_API_KEY")
	code, out, errOut = runCLI("check", "-config", path)
	if code != exitFailure || !strings.Contains(errOut, "BYBIT_API_KEY") {
		t.Errorf("check without BYBIT_API_KEY: exit %d, want 1 naming the variable\n%s%s", code, out, errOut)
	}
}
