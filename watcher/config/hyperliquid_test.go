package config

import (
	"fmt"
	"strings"
	"testing"
)

// TestHyperliquidStreamers: past Hyperliquid's 10 streamed addresses per
// endpoint, accounts are planned as polled and check says which.
func TestHyperliquidStreamers(t *testing.T) {
	var b strings.Builder
	b.WriteString("notifiers: [{name: phone, type: telegram, token: t, chat_id: \"1\"}]\naccounts:\n")
	for i := range 12 {
		fmt.Fprintf(&b, "  - {name: hl%02d, exchange: hyperliquid, address: \"0x%040x\", stream: true}\n", i, i+1)
	}
	// The same address again shares a slot; another endpoint has its own.
	b.WriteString("  - {name: again, exchange: hyperliquid, address: \"0x0000000000000000000000000000000000000001\", stream: true}\n")
	b.WriteString("  - {name: local, exchange: hyperliquid, address: \"0x00000000000000000000000000000000000000ff\", stream: true, endpoint: \"http://127.0.0.1:9\"}\n")
	b.WriteString("  - {name: polled, exchange: hyperliquid, address: \"0x00000000000000000000000000000000000000fe\"}\n")
	b.WriteString("  - {name: upper, exchange: hyperliquid, address: \"0x00000000000000000000000000000000000000fd\", stream: true, endpoint: \"https://API.hyperliquid.xyz/\"}\n")
	cfg, err := Parse("c.yaml", []byte(b.String()), nil)
	if err != nil {
		t.Fatal(err)
	}
	streams := map[string]bool{}
	for _, a := range cfg.Accounts {
		streams[a.Name] = a.Stream
	}
	// hl00..hl09 take the default host's 10 addresses; "again" shares
	// hl00's; "upper" names the same host (case, trailing slash) and is
	// past them; "local" is another host.
	for _, name := range []string{"hl00", "hl09", "again", "local"} {
		if !streams[name] {
			t.Errorf("%s does not stream", name)
		}
	}
	for _, name := range []string{"hl10", "hl11", "upper", "polled"} {
		if streams[name] {
			t.Errorf("%s streams", name)
		}
	}
	if h := HyperliquidHost(cfg.Accounts[len(cfg.Accounts)-1]); h != "api.hyperliquid.xyz" {
		t.Errorf("HyperliquidHost = %q", h)
	}
	w := warningText(cfg)
	if !strings.Contains(w, "3 hyperliquid accounts with stream: true poll instead (hl10, hl11, upper)") {
		t.Errorf("warnings:\n%s", w)
	}
}
