package config

import "testing"

// TestValidationVenues: check's messages for the venues read by address
// (hyperliquid) and by key (bybit): a missing or malformed address, a key
// where none belongs, missing keys, an address where none belongs, and a
// misspelt exchange.
func TestValidationVenues(t *testing.T) {
	const addr = "0x0123456789abcdef0123456789abcdef01234567"
	tests := []struct {
		name, src, want string
	}{
		{"hyperliquid ok", "accounts: [{name: h, exchange: hyperliquid, address: \"" + addr + "\"}]\n", ``},
		{"hyperliquid without address", "accounts: [{name: h, exchange: hyperliquid}]\n", `c.yaml:1:12: accounts[0].address: is required for a hyperliquid account: the account's public address, quoted (address: "0x…", 0x and 40 hex digits); no key is needed`},
		{"hyperliquid empty address", "accounts: [{name: h, exchange: hyperliquid, address: \"\"}]\n", `c.yaml:1:54: accounts[0].address: is required for a hyperliquid account: the account's public address, quoted (address: "0x…", 0x and 40 hex digits); no key is needed`},
		// yaml keeps a plain scalar's text for a string field: an unquoted
		// address (a YAML number to other tools) is read as written.
		{"hyperliquid unquoted address", "accounts: [{name: h, exchange: hyperliquid, address: " + addr + "}]\n", ``},
		{"hyperliquid unquoted short address", "accounts: [{name: h, exchange: hyperliquid, address: 0x1234}]\n", `c.yaml:1:54: accounts[0].address: "0x1234" is not a Hyperliquid address: want the account's public address, 0x and 40 hex digits`},
		{"hyperliquid quoted short address", "accounts: [{name: h, exchange: hyperliquid, address: \"0x0123456789abcdef\"}]\n", `c.yaml:1:54: accounts[0].address: "0x0123456789abcdef" is not a Hyperliquid address: want the account's public address, 0x and 40 hex digits`},
		{"hyperliquid address without 0x", "accounts: [{name: h, exchange: hyperliquid, address: \"0123456789abcdef0123456789abcdef01234567\"}]\n", `c.yaml:1:54: accounts[0].address: "0123456789abcdef0123456789abcdef01234567" is not a Hyperliquid address: want the account's public address, 0x and 40 hex digits`},
		{"hyperliquid unquoted decimal-looking address", "accounts: [{name: h, exchange: hyperliquid, address: 0x0000000000000000000000000000000000000001}]\n", ``},
		{"hyperliquid with keys", "accounts: [{name: h, exchange: hyperliquid, address: \"" + addr + "\", api_key: k, api_secret_file: /x, allow_trading_key: true}]\n", `c.yaml:1:109: accounts[0].api_key: a hyperliquid account is read by its public address and needs no key; remove api_key (never give marginwatch a Hyperliquid private key)
c.yaml:1:129: accounts[0].api_secret_file: cannot read the secret: stat /x: no such file or directory
c.yaml:1:152: accounts[0].allow_trading_key: a hyperliquid account has no key; remove allow_trading_key`},
		// A private key pasted as the address is refused without echoing it.
		{"hyperliquid private key as address", "accounts: [{name: h, exchange: hyperliquid, address: \"0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318\"}]\n", `c.yaml:1:54: accounts[0].address: is 64 hex digits, the length of a private key (or a transaction hash), not an address; never give marginwatch a private key: use the account's public address, 0x and 40 hex digits`},
		{"bybit without keys", "accounts: [{name: b, exchange: bybit}]\n", `c.yaml:1:12: accounts[0].api_key: is required for a bybit account: set api_key (e.g. ${BYBIT_API_KEY}) or api_key_file to a read-only API key
c.yaml:1:12: accounts[0].api_secret: is required for a bybit account: set api_secret (e.g. ${BYBIT_API_SECRET}) or api_secret_file`},
		{"bybit with address", "accounts: [{name: b, exchange: bybit, api_key: k, api_secret: s, address: \"" + addr + "\"}]\n", `c.yaml:1:75: accounts[0].address: only a hyperliquid account is read by its address; remove it, or set exchange: hyperliquid`},
		{"bybit typo", "accounts: [{name: b, exchange: bybitt, api_key: k, api_secret: s}]\n", `c.yaml:1:32: accounts[0].exchange: unknown exchange "bybitt" (did you mean "bybit"?)`},
		{"hyperliquid typo", "accounts: [{name: h, exchange: hyperliqiud, address: \"" + addr + "\"}]\n", `c.yaml:1:32: accounts[0].exchange: unknown exchange "hyperliqiud" (did you mean "hyperliquid"?)`},
		{"binance with address", "accounts: [{name: a, exchange: binance-usdm, api_key: k, api_secret: s, address: \"" + addr + "\"}]\n", `c.yaml:1:82: accounts[0].address: only a hyperliquid account is read by its address; remove it, or set exchange: hyperliquid`},
	}
	env := envOf(nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseErr(tt.src, env); got != tt.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}
