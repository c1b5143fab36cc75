package config

import "testing"

// TestChecksumOK uses EIP-55's own test vectors.
func TestChecksumOK(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", true},
		{"0xfB6916095ca1df60bB79Ce92cE3Ea74c37c5d359", true},
		{"0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB", true},
		{"0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb", true},
		{"0x5aaeb6053f3e94c9b9a09f33669435e7ef1beaed", true},  // all lower: no checksum
		{"0x5AAEB6053F3E94C9B9A09F33669435E7EF1BEAED", true},  // all upper: no checksum
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAee", false}, // last digit mistyped
		{"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAeD", false}, // one letter's case flipped
	} {
		if got := checksumOK(tc.addr[2:]); got != tc.ok {
			t.Errorf("checksumOK(%s) = %v, want %v", tc.addr, got, tc.ok)
		}
	}
}

func TestHyperliquidAddressChecksum(t *testing.T) {
	src := "accounts: [{name: hl, exchange: hyperliquid, address: \"0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAee\"}]\n"
	_, err := Parse("c.yaml", []byte(src), func(string) (string, bool) { return "", false })
	if err == nil {
		t.Fatal("an address failing its checksum was accepted")
	}
	const want = `c.yaml:1:55: accounts[0].address: "0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAee" fails its EIP-55 checksum`
	if got := err.Error(); len(got) < len(want) || got[:len(want)] != want {
		t.Errorf("error:\n%s\nwant it to start with\n%s", got, want)
	}
}
