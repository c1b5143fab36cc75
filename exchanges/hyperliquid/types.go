package hyperliquid

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// num is a Hyperliquid number: a decimal string ("2986.3"), a JSON number
// (leverage.value, maxLeverage) or null (liquidationPx without one). Set is
// false for null or absent; a finite value is required otherwise.
type num struct {
	V   float64
	Set bool
}

func (n *num) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*n = num{}
		return nil
	}
	s := string(b)
	if len(b) > 0 && b[0] == '"' {
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return fmt.Errorf("%q is not a number", s)
	}
	*n = num{V: v, Set: true}
	return nil
}

// or is the value, or def when null or absent.
func (n num) or(def float64) float64 {
	if n.Set {
		return n.V
	}
	return def
}

// clearinghouseState is the account: both the current shape and the older
// one (no crossMaintenanceMarginUsed, maxLeverage, cumFunding, time).
type clearinghouseState struct {
	AssetPositions []struct {
		Position position `json:"position"`
		Type     string   `json:"type"`
	} `json:"assetPositions"`
	CrossMaintenanceMarginUsed num           `json:"crossMaintenanceMarginUsed"`
	CrossMarginSummary         marginSummary `json:"crossMarginSummary"`
	MarginSummary              marginSummary `json:"marginSummary"`
	Withdrawable               num           `json:"withdrawable"`
	Time                       int64         `json:"time"`
}

type marginSummary struct {
	AccountValue    num `json:"accountValue"`
	TotalMarginUsed num `json:"totalMarginUsed"`
	TotalNtlPos     num `json:"totalNtlPos"`
	TotalRawUsd     num `json:"totalRawUsd"`
}

type position struct {
	Coin     string `json:"coin"`
	EntryPx  num    `json:"entryPx"`
	Leverage struct {
		Type   string `json:"type"`
		Value  num    `json:"value"`
		RawUsd num    `json:"rawUsd"`
	} `json:"leverage"`
	LiquidationPx  num `json:"liquidationPx"`
	MarginUsed     num `json:"marginUsed"`
	MaxLeverage    num `json:"maxLeverage"`
	PositionValue  num `json:"positionValue"`
	ReturnOnEquity num `json:"returnOnEquity"`
	Szi            num `json:"szi"`
	UnrealizedPnl  num `json:"unrealizedPnl"`
}

// order is a row of frontendOpenOrders.
type order struct {
	Coin           string  `json:"coin"`
	Side           string  `json:"side"` // B buy, A sell
	IsTrigger      bool    `json:"isTrigger"`
	OrderType      string  `json:"orderType"`
	TriggerPx      num     `json:"triggerPx"`
	Sz             num     `json:"sz"`
	ReduceOnly     bool    `json:"reduceOnly"`
	IsPositionTpsl bool    `json:"isPositionTpsl"`
	Oid            int64   `json:"oid"`
	Children       []order `json:"children"`
}

// metaAndAssetCtxs is [meta, assetCtxs]: the universe and, index for index,
// each asset's market context.
type metaAndAssetCtxs struct {
	Universe []struct {
		Name        string `json:"name"`
		MaxLeverage num    `json:"maxLeverage"`
	}
	Ctxs []struct {
		Funding num `json:"funding"`
		MarkPx  num `json:"markPx"`
	}
}

func (m *metaAndAssetCtxs) UnmarshalJSON(b []byte) error {
	var pair []json.RawMessage
	if err := json.Unmarshal(b, &pair); err != nil {
		return err
	}
	if len(pair) != 2 {
		return fmt.Errorf("want [meta, assetCtxs], got an array of %d", len(pair))
	}
	var meta struct {
		Universe *[]struct {
			Name        string `json:"name"`
			MaxLeverage num    `json:"maxLeverage"`
		} `json:"universe"`
	}
	meta.Universe = &m.Universe
	if err := json.Unmarshal(pair[0], &meta); err != nil {
		return err
	}
	if err := json.Unmarshal(pair[1], &m.Ctxs); err != nil {
		return err
	}
	if len(m.Ctxs) != len(m.Universe) {
		return fmt.Errorf("%d assets in the universe but %d asset contexts", len(m.Universe), len(m.Ctxs))
	}
	return nil
}

// fundingRow is a row of userFunding.
type fundingRow struct {
	Delta struct {
		Coin string `json:"coin"`
		Type string `json:"type"`
		Usdc num    `json:"usdc"`
	} `json:"delta"`
	Hash string `json:"hash"`
	Time int64  `json:"time"`
}

// candle is a row of candleSnapshot.
type candle struct {
	Open  int64  `json:"t"`
	Close int64  `json:"T"` // close time, ms (last millisecond of the candle)
	Coin  string `json:"s"`
	I     string `json:"i"`
	H     num    `json:"h"`
	L     num    `json:"l"`
	C     num    `json:"c"`
}
