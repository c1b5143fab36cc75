package config

import (
	"net/url"
	"strings"
)

// HyperliquidStreamUsers is Hyperliquid's limit of distinct addresses in
// websocket user subscriptions per IP: past it, accounts poll.
const HyperliquidStreamUsers = 10

// Hyperliquid's REST bases, for accounts without an endpoint.
const (
	HyperliquidMainnet = "https://api.hyperliquid.xyz"
	HyperliquidTestnet = "https://api.hyperliquid-testnet.xyz"
)

// HyperliquidEndpoint is the REST base of hyperliquid account a.
func HyperliquidEndpoint(a Account) string {
	switch {
	case a.Endpoint != "":
		return a.Endpoint
	case a.Testnet:
		return HyperliquidTestnet
	}
	return HyperliquidMainnet
}

// HyperliquidHost is the host whose IP limits a's streams (the adapter's
// key for the addresses it streams), lower case.
func HyperliquidHost(a Account) string {
	base := HyperliquidEndpoint(a)
	if u, err := url.Parse(base); err == nil && u.Host != "" {
		return strings.ToLower(u.Host)
	}
	return strings.ToLower(base)
}

// limitHyperliquidStreams decides, at load, which hyperliquid accounts
// with stream: true stream: the first HyperliquidStreamUsers distinct
// addresses of each host, in config order (accounts sharing an address
// share one). The others get stream: false, so that the daemon, its
// request plan and check agree on who polls; the warning names them.
func limitHyperliquidStreams(cfg *Config) {
	seen := map[string]map[string]bool{} // host → addresses
	for i := range cfg.Accounts {
		a := &cfg.Accounts[i]
		if a.Exchange != "hyperliquid" || !a.Stream {
			continue
		}
		host, addr := HyperliquidHost(*a), strings.ToLower(a.Address)
		m := seen[host]
		if m == nil {
			m = map[string]bool{}
			seen[host] = m
		}
		if !m[addr] && len(m) >= HyperliquidStreamUsers {
			a.Stream = false
			cfg.hlPolled = append(cfg.hlPolled, a.Name)
			continue
		}
		m[addr] = true
	}
}

// hyperliquidStreamWarning names the hyperliquid accounts that asked for
// stream: true and poll (limitHyperliquidStreams).
func (c *Config) hyperliquidStreamWarning() (Warning, bool) {
	if len(c.hlPolled) == 0 {
		return Warning{}, false
	}
	return c.At.warnf("accounts", "%d hyperliquid accounts with stream: true poll instead (%s): Hyperliquid serves websocket user subscriptions for %d distinct addresses per IP, taken in config order; they poll every poll_interval, and the request plan counts them as polled", len(c.hlPolled), listNames(c.hlPolled), HyperliquidStreamUsers), true
}
