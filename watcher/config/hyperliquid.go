package config

import (
	"fmt"
	"strings"
)

// HyperliquidStreamUsers is Hyperliquid's limit of distinct addresses in
// websocket user subscriptions per IP: past it, accounts poll.
const HyperliquidStreamUsers = 10

// HyperliquidStreamers names the hyperliquid accounts with stream: true
// that get one of the HyperliquidStreamUsers addresses of their endpoint,
// in config order (accounts sharing an address share one). The daemon and
// check plan the others as polled: that many will poll, whichever ones
// connect last.
func (c *Config) HyperliquidStreamers() map[string]bool {
	out := map[string]bool{}
	seen := map[string]map[string]bool{} // endpoint → addresses
	for _, a := range c.Accounts {
		if a.Exchange != "hyperliquid" || !a.Stream {
			continue
		}
		key := a.Endpoint
		if key == "" {
			key = fmt.Sprint("default testnet=", a.Testnet)
		}
		m := seen[key]
		if m == nil {
			m = map[string]bool{}
			seen[key] = m
		}
		addr := strings.ToLower(a.Address)
		if !m[addr] && len(m) >= HyperliquidStreamUsers {
			continue
		}
		m[addr] = true
		out[a.Name] = true
	}
	return out
}

// hyperliquidStreamWarning warns when more hyperliquid accounts stream
// from one endpoint than Hyperliquid serves.
func (c *Config) hyperliquidStreamWarning() (Warning, bool) {
	ok := c.HyperliquidStreamers()
	var polled []string
	for _, a := range c.Accounts {
		if a.Exchange == "hyperliquid" && a.Stream && !ok[a.Name] {
			polled = append(polled, a.Name)
		}
	}
	if len(polled) == 0 {
		return Warning{}, false
	}
	return c.At.warnf("accounts", "%d hyperliquid accounts with stream: true cannot stream (%s): Hyperliquid serves websocket user subscriptions for %d distinct addresses per IP, so that many accounts poll every poll_interval instead, and the request plan counts them as polled", len(polled), listNames(polled), HyperliquidStreamUsers), true
}
