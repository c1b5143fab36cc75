package binancetest

import (
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// The forced orders of the shared fixture fapi_v1_forceOrders.json (Binance's
// docs example "User's Force Orders"), served by every USDⓈ-M account: a
// LIQUIDATION of a BTCUSDT long in one-way mode (SELL, positionSide BOTH)
// and an ADL of a BTCUSDT short in hedge mode (BUY, SHORT).
const (
	// LiquidationTime is the liquidation order's time (ms): 2020-07-30
	// 11:13:40.044 UTC; its orderId is 6071832819.
	LiquidationTime = 1596107620044
	// ADLTime is the ADL order's time (ms): 2020-07-30 12:05:25.059 UTC;
	// its orderId is 6072734303.
	ADLTime = 1596110725059
	// COINMLiquidationTime is the time (ms) of the COIN-M accounts' forced
	// order, a liquidation of the BTCUSD_PERP long (COINM) or the
	// BTCUSD_201225 LONG (COINMHedge): 2020-08-04 11:53:25.019 UTC; its
	// orderId is 165123080.
	COINMLiquidationTime = 1596542005019
)

// forceOrdersFixture is fapi_v1_forceOrders.json as it is.
const forceOrdersFixture = `[
  {
    "orderId": 6071832819,
    "symbol": "BTCUSDT",
    "status": "FILLED",
    "clientOrderId": "autoclose-1596107620040000020",
    "price": "10871.09",
    "avgPrice": "10913.21000",
    "origQty": "0.001",
    "executedQty": "0.001",
    "cumQuote": "10.91321",
    "timeInForce": "IOC",
    "type": "LIMIT",
    "reduceOnly": false,
    "closePosition": false,
    "side": "SELL",
    "positionSide": "BOTH",
    "stopPrice": "0",
    "workingType": "CONTRACT_PRICE",
    "origType": "LIMIT",
    "time": 1596107620044,
    "updateTime": 1596107620087
  },
  {
    "orderId": 6072734303,
    "symbol": "BTCUSDT",
    "status": "FILLED",
    "clientOrderId": "adl_autoclose",
    "price": "11023.14",
    "avgPrice": "10979.82000",
    "origQty": "0.001",
    "executedQty": "0.001",
    "cumQuote": "10.97982",
    "timeInForce": "GTC",
    "type": "LIMIT",
    "reduceOnly": false,
    "closePosition": false,
    "side": "BUY",
    "positionSide": "SHORT",
    "stopPrice": "0",
    "workingType": "CONTRACT_PRICE",
    "origType": "LIMIT",
    "time": 1596110725059,
    "updateTime": 1596110725071
  }
]`

// apiRestrictionsFixture is sapi_v1_account_apiRestrictions.json as it is.
const apiRestrictionsFixture = `{
  "ipRestrict": false,
  "createTime": 1623840271000,
  "enableReading": true,
  "enableWithdrawals": false,
  "enableInternalTransfer": true,
  "enableMargin": false,
  "enableFutures": false,
  "permitsUniversalTransfer": true,
  "enableVanillaOptions": false,
  "enableFixApiTrade": false,
  "enableFixReadOnly": true,
  "enableSpotAndMarginTrading": false,
  "enablePortfolioMarginTrading": true
}`

// forceOrdersCOINM is a COIN-M forced order in the shape of Binance's docs
// example for GET /dapi/v1/forceOrders (no fixture: made up, with pair and
// cumBase where USDⓈ-M has cumQuote), for symbol.
func forceOrdersCOINM(symbol, positionSide string) string {
	return `[{"orderId":165123080,"symbol":"` + symbol + `","pair":"BTCUSD","status":"FILLED","clientOrderId":"autoclose-1596542005017000006","price":"11326.9","avgPrice":"11326.9","origQty":"1","executedQty":"1","cumBase":"0.00882854","timeInForce":"IOC","type":"LIMIT","reduceOnly":false,"closePosition":false,"side":"SELL","positionSide":"` + positionSide + `","stopPrice":"0","workingType":"CONTRACT_PRICE","priceProtect":false,"origType":"LIMIT","time":1596542005019,"updateTime":1596542005050}]`
}

// forceOrders answers GET forceOrders from the account's forced orders as
// Binance does: filtered by symbol, autoCloseType (LIQUIDATION: clientOrderId
// "autoclose-…", ADL: "adl_autoclose"), startTime and endTime (inclusive),
// at most limit rows (default 50, at most 100).
func forceOrders(all string, q url.Values) []byte {
	var rows []json.RawMessage
	if json.Unmarshal([]byte(all), &rows) != nil {
		return []byte("[]")
	}
	from, _ := strconv.ParseInt(q.Get("startTime"), 10, 64)
	to, err := strconv.ParseInt(q.Get("endTime"), 10, 64)
	if err != nil {
		to = math.MaxInt64
	}
	limit, err := strconv.Atoi(q.Get("limit"))
	if err != nil || limit <= 0 {
		limit = 50
	}
	limit = min(limit, 100)
	var out []json.RawMessage
	for _, r := range rows {
		var o struct {
			Symbol        string `json:"symbol"`
			ClientOrderID string `json:"clientOrderId"`
			Time          int64  `json:"time"`
		}
		if json.Unmarshal(r, &o) != nil {
			continue
		}
		adl := strings.HasPrefix(o.ClientOrderID, "adl_")
		switch {
		case q.Get("symbol") != "" && o.Symbol != q.Get("symbol"),
			q.Get("autoCloseType") == "LIQUIDATION" && adl,
			q.Get("autoCloseType") == "ADL" && !adl,
			o.Time < from || o.Time > to:
			continue
		}
		out = append(out, r)
	}
	if len(out) > limit {
		out = out[:limit]
	}
	return join(out)
}

// Liquidate makes the position of symbol on positionSide ("BOTH" in
// one-way mode, "LONG" or "SHORT" in hedge mode) disappear from
// positionRisk the way a liquidation does, and adds the forced order that
// closed it, at the server's clock, in the fixture's shape: SELL for a long,
// BUY for a short, at its liquidation price. It returns the order's id, or
// an error when the account holds no such position.
func (s *Server) Liquidate(symbol, positionSide string) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.opts.Now().UnixMilli()
	riskPath, forcePath := "/fapi/v3/positionRisk", "/fapi/v1/forceOrders"
	if _, ok := s.data.bodies["/dapi/v1/positionRisk"]; ok {
		riskPath, forcePath = "/dapi/v1/positionRisk", "/dapi/v1/forceOrders"
	}
	var rows []json.RawMessage
	if err := json.Unmarshal([]byte(s.data.bodies[riskPath]), &rows); err != nil {
		return 0, fmt.Errorf("binancetest: %s body: %w", riskPath, err)
	}
	var (
		keep  []json.RawMessage
		found bool
		amt   float64
		liq   string
	)
	for _, r := range rows {
		var p struct {
			Symbol           string `json:"symbol"`
			PositionSide     string `json:"positionSide"`
			PositionAmt      string `json:"positionAmt"`
			LiquidationPrice string `json:"liquidationPrice"`
		}
		json.Unmarshal(r, &p)
		a, _ := strconv.ParseFloat(p.PositionAmt, 64)
		if !found && p.Symbol == symbol && p.PositionSide == positionSide && a != 0 {
			found, amt, liq = true, a, p.LiquidationPrice
			continue
		}
		keep = append(keep, r)
	}
	if !found {
		return 0, fmt.Errorf("binancetest: no %s %s position to liquidate", symbol, positionSide)
	}
	s.data.bodies[riskPath] = string(join(keep))

	side := "SELL"
	if amt < 0 {
		side = "BUY"
	}
	id := s.nextOrder
	s.nextOrder++
	qty := strconv.FormatFloat(math.Abs(amt), 'f', -1, 64)
	order := fmt.Sprintf(`{"orderId":%d,"symbol":%q,"status":"FILLED","clientOrderId":"autoclose-%d000001","price":%q,"avgPrice":%q,"origQty":%q,"executedQty":%q,"cumQuote":"0","timeInForce":"IOC","type":"LIMIT","reduceOnly":false,"closePosition":false,"side":%q,"positionSide":%q,"stopPrice":"0","workingType":"CONTRACT_PRICE","origType":"LIMIT","time":%d,"updateTime":%d}`,
		id, symbol, now, liq, liq, qty, qty, side, positionSide, now, now)
	var orders []json.RawMessage
	json.Unmarshal([]byte(s.data.bodies[forcePath]), &orders)
	orders = append(orders, json.RawMessage(order))
	sort.SliceStable(orders, func(i, j int) bool { return timeOf(orders[i]) < timeOf(orders[j]) })
	s.data.bodies[forcePath] = string(join(orders))
	return id, nil
}

func timeOf(r json.RawMessage) int64 {
	var o struct {
		Time int64 `json:"time"`
	}
	json.Unmarshal(r, &o)
	return o.Time
}
