package binancetest

import (
	"embed"
	"encoding/json"
	"strings"
)

// The project's shared Binance fixtures (Binance's documentation examples
// and official connector test bodies; see fixtures/SOURCES.md), copied
// byte for byte. Scenarios serve them as they are; where a scenario needs
// other numbers it appends rows of its own, said so where it does.
//
//go:embed fixtures/*.json
var fixtureFS embed.FS

// Fixture is the shared fixture file name (e.g. "fapi_v1_income.json") as
// it is. It panics on an unknown name: a test bug.
func Fixture(name string) string {
	b, err := fixtureFS.ReadFile("fixtures/" + name)
	if err != nil {
		panic("binancetest: no fixture " + name)
	}
	return string(b)
}

// withRows is the JSON array body followed by the added rows (raw JSON
// objects): the body's own rows stay byte for byte.
func withRows(body string, rows ...string) string {
	body = strings.TrimSpace(body)
	if len(rows) == 0 {
		return body
	}
	inner := strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(body, "["), "]"))
	if inner == "" {
		return "[" + strings.Join(rows, ",") + "]"
	}
	return "[" + inner + "," + strings.Join(rows, ",") + "]"
}

// rowsOf splits a JSON array into its raw rows (nil when it is not one).
func rowsOf(body string) []json.RawMessage {
	var rows []json.RawMessage
	if json.Unmarshal([]byte(body), &rows) != nil {
		return nil
	}
	return rows
}
