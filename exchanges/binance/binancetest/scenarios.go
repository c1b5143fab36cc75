package binancetest

import (
	"encoding/json"
	"strconv"
	"time"
)

// scenario is one account's data: static bodies per path, candle shapes per
// symbol and income rows (timed relative to the server clock).
type scenario struct {
	bodies  map[string]string
	candles map[string]candle
	income  []incomeRow
}

type candle struct{ close, half float64 }

// incomeRow is a generated row (age before the server clock, or at at ms)
// or, with raw, a row served as it is at its own time at.
type incomeRow struct {
	symbol, typ, income, asset string
	age                        time.Duration
	at                         int64
	raw                        []byte
}

// NextFunding is the nextFundingTime (ms) every premiumIndex row reports.
const NextFunding = 1767254400000

func scenarios(a Account) scenario {
	switch a {
	case USDMHedge:
		return usdmHedge()
	case COINM:
		return coinm()
	case COINMHedge:
		return coinmHedge()
	case USDMPools:
		return usdmPools()
	case USDMMultiAssets:
		return usdmMultiAssets()
	default:
		return usdmOneWay()
	}
}

// common USDⓈ-M bodies that do not depend on the account.
func usdmCommon(b map[string]string) {
	b["/fapi/v1/fundingInfo"] = `[
  {"symbol":"BLZUSDT","adjustedFundingRateCap":"0.02500000","adjustedFundingRateFloor":"-0.02500000","fundingIntervalHours":8,"disclaimer":false},
  {"symbol":"SOLUSDT","adjustedFundingRateCap":"0.02000000","adjustedFundingRateFloor":"-0.02000000","fundingIntervalHours":4,"disclaimer":false}
]`
	// ETHUSDT's first bracket is the fixture's; the rest are made up in its
	// shape (cum = floor × (ratio − previous ratio) + previous cum, as Binance
	// builds it).
	b["/fapi/v1/leverageBracket"] = `[
  {"symbol":"BTCUSDT","notionalCoef":1.5,"brackets":[
    {"bracket":1,"initialLeverage":125,"notionalCap":50000,"notionalFloor":0,"maintMarginRatio":0.004,"cum":0.0},
    {"bracket":2,"initialLeverage":100,"notionalCap":500000,"notionalFloor":50000,"maintMarginRatio":0.005,"cum":50.0}]},
  {"symbol":"ETHUSDT","notionalCoef":1.5,"brackets":[
    {"bracket":1,"initialLeverage":75,"notionalCap":10000,"notionalFloor":0,"maintMarginRatio":0.0065,"cum":0.0},
    {"bracket":2,"initialLeverage":50,"notionalCap":100000,"notionalFloor":10000,"maintMarginRatio":0.01,"cum":35.0}]},
  {"symbol":"SOLUSDT","notionalCoef":1.5,"brackets":[
    {"bracket":1,"initialLeverage":50,"notionalCap":50000,"notionalFloor":0,"maintMarginRatio":0.01,"cum":0.0},
    {"bracket":2,"initialLeverage":25,"notionalCap":250000,"notionalFloor":50000,"maintMarginRatio":0.025,"cum":750.0}]},
  {"symbol":"COMPUSDT","notionalCoef":1.5,"brackets":[
    {"bracket":1,"initialLeverage":20,"notionalCap":5000,"notionalFloor":0,"maintMarginRatio":0.01,"cum":0.0}]}
]`
	b["/fapi/v1/exchangeInfo"] = `{"rateLimits":[{"interval":"MINUTE","intervalNum":1,"limit":2400,"rateLimitType":"REQUEST_WEIGHT"}],"serverTime":1565613908500,"timezone":"UTC"}`
	b["/fapi/v1/symbolConfig"] = `[{"symbol":"BTCUSDT","marginType":"CROSSED","isAutoAddMargin":false,"leverage":21,"maxNotionalValue":"1000000"}]`
	b["/fapi/v1/forceOrders"] = forceOrdersFixture
}

// usdmOneWay: single-asset mode, one-way.
//
//	BTCUSDT  long  0.5 @ 60000, mark 61000, cross 10x, maint 122, liq 39000
//	ETHUSDT  short 10  @ 3000,  mark 3100,  isolated 5x (wallet 6000), maint 105, liq 3560
//	SOLUSDT  long  100 @ 150,   mark 140,   cross 3x, maint 140, liq 80
//
// Wallet 50000 (44000 cross + 6000 isolated), unrealized PnL 500 − 1000 −
// 1000 = −1500, margin balance 48500, maint 122 + 105 + 140 = 367, cross
// unrealized PnL 500 − 1000 = −500.
// Stops: BTC has an algo STOP_MARKET SELL closePosition; ETH a regular STOP
// BUY reduce-only; SOL only a TAKE_PROFIT, a wrong-side stop and a stop that
// is not reduce-only (no stop).
func usdmOneWay() scenario {
	b := map[string]string{}
	usdmCommon(b)
	b["/fapi/v1/positionSide/dual"] = `{"dualSidePosition":false}`
	b["/fapi/v1/multiAssetsMargin"] = `{"multiAssetsMargin":false}`
	b["/fapi/v2/account"] = `{
  "feeTier": 0, "feeBurn": true, "canTrade": true, "canDeposit": true, "canWithdraw": true, "updateTime": 0,
  "multiAssetsMargin": false, "tradeGroupId": -1,
  "totalInitialMargin": "11716.66666667", "totalMaintMargin": "367.00000000",
  "totalWalletBalance": "50000.00000000", "totalUnrealizedProfit": "-1500.00000000",
  "totalMarginBalance": "48500.00000000", "totalPositionInitialMargin": "11716.66666667",
  "totalOpenOrderInitialMargin": "0.00000000", "totalCrossWalletBalance": "44000.00000000",
  "totalCrossUnPnl": "-500.00000000", "availableBalance": "31000.00000000", "maxWithdrawAmount": "31000.00000000",
  "assets": [
    {"asset": "USDT", "walletBalance": "50000.00000000", "unrealizedProfit": "-1500.00000000", "marginBalance": "48500.00000000",
     "maintMargin": "367.00000000", "initialMargin": "11716.66666667", "positionInitialMargin": "11716.66666667",
     "openOrderInitialMargin": "0.00000000", "crossWalletBalance": "44000.00000000", "crossUnPnl": "-500.00000000",
     "availableBalance": "31000.00000000", "maxWithdrawAmount": "31000.00000000", "marginAvailable": true, "updateTime": 1625474304765}
  ],
  "positions": [
    {"symbol": "BTCUSDT", "initialMargin": "3050", "maintMargin": "122", "unrealizedProfit": "500.00000000",
     "positionInitialMargin": "3050", "openOrderInitialMargin": "0", "leverage": "10", "isolated": false,
     "entryPrice": "60000.0", "maxNotional": "250000", "bidNotional": "0", "askNotional": "0",
     "positionSide": "BOTH", "positionAmt": "0.500", "updateTime": 1720736417660},
    {"symbol": "ETHUSDT", "initialMargin": "6200", "maintMargin": "105", "unrealizedProfit": "-1000.00000000",
     "positionInitialMargin": "6200", "openOrderInitialMargin": "0", "leverage": "5", "isolated": true,
     "entryPrice": "3000.0", "maxNotional": "1000000", "bidNotional": "0", "askNotional": "0",
     "positionSide": "BOTH", "positionAmt": "-10.000", "updateTime": 1720736417660},
    {"symbol": "SOLUSDT", "initialMargin": "4666.66666667", "maintMargin": "140", "unrealizedProfit": "-1000.00000000",
     "positionInitialMargin": "4666.66666667", "openOrderInitialMargin": "0", "leverage": "3", "isolated": false,
     "entryPrice": "150.0", "maxNotional": "500000", "bidNotional": "0", "askNotional": "0",
     "positionSide": "BOTH", "positionAmt": "100", "updateTime": 1720736417660},
    {"symbol": "XRPUSDT", "initialMargin": "0", "maintMargin": "0", "unrealizedProfit": "0.00000000",
     "positionInitialMargin": "0", "openOrderInitialMargin": "0", "leverage": "20", "isolated": false,
     "entryPrice": "0.00000", "maxNotional": "250000", "bidNotional": "0", "askNotional": "0",
     "positionSide": "BOTH", "positionAmt": "0", "updateTime": 0}
  ]
}`
	b["/fapi/v3/positionRisk"] = `[
  {"symbol": "BTCUSDT", "positionSide": "BOTH", "positionAmt": "0.500", "entryPrice": "60000.0", "breakEvenPrice": "60030.0",
   "markPrice": "61000.00000000", "unRealizedProfit": "500.00000000", "liquidationPrice": "39000.00000000",
   "isolatedMargin": "0", "notional": "30500.00000000", "marginAsset": "USDT", "isolatedWallet": "0",
   "initialMargin": "3050", "maintMargin": "122", "positionInitialMargin": "3050", "openOrderInitialMargin": "0",
   "adl": 2, "bidNotional": "0", "askNotional": "0", "updateTime": 1720736417660},
  {"symbol": "ETHUSDT", "positionSide": "BOTH", "positionAmt": "-10.000", "entryPrice": "3000.0", "breakEvenPrice": "2998.5",
   "markPrice": "3100.00000000", "unRealizedProfit": "-1000.00000000", "liquidationPrice": "3560.00000000",
   "isolatedMargin": "5000.00000000", "notional": "-31000.00000000", "marginAsset": "USDT", "isolatedWallet": "6000",
   "initialMargin": "6200", "maintMargin": "105", "positionInitialMargin": "6200", "openOrderInitialMargin": "0",
   "adl": 3, "bidNotional": "0", "askNotional": "0", "updateTime": 1720736417660},
  {"symbol": "SOLUSDT", "positionSide": "BOTH", "positionAmt": "100", "entryPrice": "150.0", "breakEvenPrice": "150.075",
   "markPrice": "140.00000000", "unRealizedProfit": "-1000.00000000", "liquidationPrice": "80.00000000",
   "isolatedMargin": "0", "notional": "14000.00000000", "marginAsset": "USDT", "isolatedWallet": "0",
   "initialMargin": "4666.66666667", "maintMargin": "140", "positionInitialMargin": "4666.66666667", "openOrderInitialMargin": "0",
   "adl": 1, "bidNotional": "0", "askNotional": "0", "updateTime": 1720736417660}
]`
	b["/fapi/v1/premiumIndex"] = premiumUSDM(map[string][2]string{
		"BTCUSDT": {"61000.00000000", "0.00010000"},
		"ETHUSDT": {"3100.00000000", "0.00020000"},
		"SOLUSDT": {"140.00000000", "-0.00030000"},
		"ADAUSDT": {"0.41047590", "0.00010000"},
	}, []string{"ADAUSDT", "BTCUSDT", "ETHUSDT", "SOLUSDT"})
	b["/fapi/v1/openAlgoOrders"] = "[" +
		algoOrder(2148627, "STOP_MARKET", "BTCUSDT", "SELL", "BOTH", "55000.00", false, true) + "," +
		algoOrder(2148628, "TAKE_PROFIT", "SOLUSDT", "SELL", "BOTH", "180.000", true, false) + "]"
	b["/fapi/v1/openOrders"] = "[" +
		openOrder(1917641, "STOP", "ETHUSDT", "BUY", "BOTH", "3400", true, false) + "," +
		openOrder(1917642, "STOP_MARKET", "SOLUSDT", "BUY", "BOTH", "160", true, false) + "," +
		openOrder(1917643, "STOP_MARKET", "SOLUSDT", "SELL", "BOTH", "120", false, false) + "]"
	return scenario{
		bodies: b,
		candles: map[string]candle{
			"BTCUSDT": {61000, 250}, // ATR 500
			"ETHUSDT": {3100, 20},   // ATR 40
			"SOLUSDT": {140, 2.5},   // ATR 5
			"ADAUSDT": {0.41, 0.005},
		},
		income: []incomeRow{
			{symbol: "BTCUSDT", typ: "FUNDING_FEE", income: "-3.50000000", asset: "USDT", age: time.Hour},
			{symbol: "ETHUSDT", typ: "FUNDING_FEE", income: "2.00000000", asset: "USDT", age: 9 * time.Hour},
			{symbol: "SOLUSDT", typ: "FUNDING_FEE", income: "-1.25000000", asset: "USDT", age: 20 * time.Hour},
			{symbol: "BTCUSDT", typ: "FUNDING_FEE", income: "-100.00000000", asset: "USDT", age: 25 * time.Hour}, // older than 24h
			{symbol: "BTCUSDT", typ: "COMMISSION", income: "-9.00000000", asset: "USDT", age: 2 * time.Hour},
			{symbol: "", typ: "TRANSFER", income: "-0.37500000", asset: "USDT", age: 3 * time.Hour},
		},
	}
}

// usdmHedge: hedge mode.
//
//	BTCUSDT  LONG  0.01 @ 20000, mark 21000, cross 20x, maint 0.84, liq 30000
//	BTCUSDT  SHORT 0.02 @ 22000, mark 21000, cross 20x, maint 1.68, liq 30000
//
// Cross legs of one symbol share one liquidation price, that of the net
// position (here short 0.01), as Binance reports them.
//
//	COMPUSDT SHORT 1 (the fixture's row), cross 20x, maint 0.49720233, liq 2260.5675721
//
// Wallet 1000, unrealized 10 + 20 + 21.20817624 = 51.20817624.
// Stops: an algo STOP_MARKET SELL on the LONG side protects the long; an
// algo STOP_MARKET SELL on the SHORT side does not protect the short (it
// would add to it); the fixture's TRAILING_STOP_MARKET BUY on the SHORT side
// (openOrders) would, once armed (its activation price, 9020, is far below
// the mark). COMPUSDT has none.
func usdmHedge() scenario {
	b := map[string]string{}
	usdmCommon(b)
	b["/fapi/v1/positionSide/dual"] = `{"dualSidePosition":true}`
	b["/fapi/v1/multiAssetsMargin"] = `{"multiAssetsMargin":false}`
	b["/fapi/v2/account"] = `{
  "feeTier": 0, "feeBurn": true, "canTrade": true, "canDeposit": true, "canWithdraw": true, "updateTime": 0,
  "multiAssetsMargin": false, "tradeGroupId": -1,
  "totalInitialMargin": "33.98601168", "totalMaintMargin": "3.01720233",
  "totalWalletBalance": "1000.00000000", "totalUnrealizedProfit": "51.20817624",
  "totalMarginBalance": "1051.20817624", "totalPositionInitialMargin": "33.98601168",
  "totalOpenOrderInitialMargin": "0.00000000", "totalCrossWalletBalance": "1000.00000000",
  "totalCrossUnPnl": "51.20817624", "availableBalance": "900.00000000", "maxWithdrawAmount": "900.00000000",
  "assets": [
    {"asset": "USDT", "walletBalance": "1000.00000000", "unrealizedProfit": "51.20817624", "marginBalance": "1051.20817624",
     "maintMargin": "3.01720233", "initialMargin": "33.98601168", "positionInitialMargin": "33.98601168",
     "openOrderInitialMargin": "0.00000000", "crossWalletBalance": "1000.00000000", "crossUnPnl": "51.20817624",
     "availableBalance": "900.00000000", "maxWithdrawAmount": "900.00000000", "marginAvailable": true, "updateTime": 1625474304765}
  ],
  "positions": [
    {"symbol": "BTCUSDT", "initialMargin": "10.5", "maintMargin": "0.84", "unrealizedProfit": "10.00000000",
     "positionInitialMargin": "10.5", "openOrderInitialMargin": "0", "leverage": "20", "isolated": false,
     "entryPrice": "20000.0", "maxNotional": "250000", "bidNotional": "0", "askNotional": "0",
     "positionSide": "LONG", "positionAmt": "0.010", "updateTime": 1655217461579},
    {"symbol": "BTCUSDT", "initialMargin": "21", "maintMargin": "1.68", "unrealizedProfit": "20.00000000",
     "positionInitialMargin": "21", "openOrderInitialMargin": "0", "leverage": "20", "isolated": false,
     "entryPrice": "22000.0", "maxNotional": "250000", "bidNotional": "0", "askNotional": "0",
     "positionSide": "SHORT", "positionAmt": "-0.020", "updateTime": 1655217461579},
    {"symbol": "BTCUSDT", "initialMargin": "0", "maintMargin": "0", "unrealizedProfit": "0.00000000",
     "positionInitialMargin": "0", "openOrderInitialMargin": "0", "leverage": "20", "isolated": false,
     "entryPrice": "0.0", "maxNotional": "250000", "bidNotional": "0", "askNotional": "0",
     "positionSide": "BOTH", "positionAmt": "0", "updateTime": 0},
    {"symbol": "COMPUSDT", "initialMargin": "2.48601168", "maintMargin": "0.49720233", "unrealizedProfit": "21.20817624",
     "positionInitialMargin": "2.48601168", "openOrderInitialMargin": "0", "leverage": "20", "isolated": false,
     "entryPrice": "70.92841", "maxNotional": "50000", "bidNotional": "0", "askNotional": "0",
     "positionSide": "SHORT", "positionAmt": "-1.000", "updateTime": 1708943511656}
  ]
}`
	b["/fapi/v3/positionRisk"] = `[
  {"symbol": "BTCUSDT", "positionSide": "LONG", "positionAmt": "0.010", "entryPrice": "20000.0", "breakEvenPrice": "20010.0",
   "markPrice": "21000.00000000", "unRealizedProfit": "10.00000000", "liquidationPrice": "30000.00000000",
   "isolatedMargin": "0", "notional": "210.00000000", "marginAsset": "USDT", "isolatedWallet": "0",
   "initialMargin": "10.5", "maintMargin": "0.84", "positionInitialMargin": "10.5", "openOrderInitialMargin": "0",
   "adl": 2, "bidNotional": "0", "askNotional": "0", "updateTime": 1655217461579},
  {"symbol": "BTCUSDT", "positionSide": "SHORT", "positionAmt": "-0.020", "entryPrice": "22000.0", "breakEvenPrice": "21989.0",
   "markPrice": "21000.00000000", "unRealizedProfit": "20.00000000", "liquidationPrice": "30000.00000000",
   "isolatedMargin": "0", "notional": "-420.00000000", "marginAsset": "USDT", "isolatedWallet": "0",
   "initialMargin": "21", "maintMargin": "1.68", "positionInitialMargin": "21", "openOrderInitialMargin": "0",
   "adl": 2, "bidNotional": "0", "askNotional": "0", "updateTime": 1655217461579},
  {"symbol": "COMPUSDT", "positionSide": "SHORT", "positionAmt": "-1.000", "entryPrice": "70.92841", "breakEvenPrice": "70.900038636",
   "markPrice": "49.72023376", "unRealizedProfit": "21.20817624", "liquidationPrice": "2260.56757210",
   "isolatedMargin": "0", "notional": "-49.72023376", "marginAsset": "USDT", "isolatedWallet": "0",
   "initialMargin": "2.48601168", "maintMargin": "0.49720233", "positionInitialMargin": "2.48601168", "openOrderInitialMargin": "0",
   "adl": 2, "bidNotional": "0", "askNotional": "0", "updateTime": 1708943511656}
]`
	b["/fapi/v1/premiumIndex"] = premiumUSDM(map[string][2]string{
		"BTCUSDT":  {"21000.00000000", "0.00038246"},
		"COMPUSDT": {"49.72023376", "-0.00010000"},
	}, []string{"BTCUSDT", "COMPUSDT"})
	b["/fapi/v1/openAlgoOrders"] = "[" +
		algoOrder(2148630, "STOP_MARKET", "BTCUSDT", "SELL", "LONG", "18000.0", false, false) + "," +
		algoOrder(2148631, "STOP_MARKET", "BTCUSDT", "SELL", "SHORT", "19000.0", false, false) + "]"
	// The fixture's order, verbatim: a trailing stop buying on the SHORT side.
	b["/fapi/v1/openOrders"] = `[{"avgPrice":"0.00000","clientOrderId":"abc","cumQuote":"0","executedQty":"0","orderId":1917641,"origQty":"0.40","origType":"TRAILING_STOP_MARKET","price":"0","reduceOnly":false,"side":"BUY","positionSide":"SHORT","status":"NEW","stopPrice":"9300","closePosition":false,"symbol":"BTCUSDT","time":1579276756075,"timeInForce":"GTC","type":"TRAILING_STOP_MARKET","activatePrice":"9020","priceRate":"0.3","updateTime":1579276756075,"workingType":"CONTRACT_PRICE","priceProtect":false,"priceMatch":"NONE","selfTradePreventionMode":"NONE","goodTillDate":0}]`
	return scenario{
		bodies:  b,
		candles: map[string]candle{"BTCUSDT": {21000, 100}, "COMPUSDT": {49.72023376, 0.5}},
		income:  []incomeRow{{symbol: "BTCUSDT", typ: "FUNDING_FEE", income: "-0.08034000", asset: "USDT", age: 4 * time.Hour}},
	}
}

// coinm: COIN-M, one-way.
//
//	BTCUSD_PERP long  10 contracts × 100 USD, entry 50000, mark 52000, cross 20x, maint 0.00009615 BTC, liq 30000
//	ETHUSD_PERP short 50 contracts × 10 USD,  entry 2000,  mark 2100,  isolated 10x, wallet 0.05 ETH, maint 0.00119048 ETH, liq 2400
//
// PnL as Binance reports it: BTC 1000 × (1/50000 − 1/52000) = 0.00076923;
// ETH −500 × (1/2000 − 1/2100) = −0.01190476.
// Stops: BTCUSD_PERP has a STOP_MARKET SELL reduce-only; ETHUSD_PERP only a
// LIMIT BUY reduce-only (no stop). LINKUSD_PERP (contract 10 USD, mark 15)
// is listed, priced and bracketed but not held, for tests that open a third
// position. Forced orders: a liquidation of the BTCUSD_PERP long at
// COINMLiquidationTime.
func coinm() scenario {
	b := map[string]string{}
	b["/dapi/v1/positionSide/dual"] = `{"dualSidePosition":false}`
	b["/dapi/v1/fundingInfo"] = `[]`
	b["/dapi/v1/forceOrders"] = forceOrdersCOINM("BTCUSD_PERP", "BOTH")
	b["/dapi/v1/account"] = `{
  "assets": [
    {"asset": "BTC", "walletBalance": "0.50000000", "unrealizedProfit": "0.00076923", "marginBalance": "0.50076923",
     "maintMargin": "0.00009615", "initialMargin": "0.00096154", "positionInitialMargin": "0.00096154",
     "openOrderInitialMargin": "0.00000000", "maxWithdrawAmount": "0.45000000", "crossWalletBalance": "0.50000000",
     "crossUnPnl": "0.00076923", "availableBalance": "0.45000000", "updateTime": 1625474304765},
    {"asset": "ETH", "walletBalance": "2.00000000", "unrealizedProfit": "-0.01190476", "marginBalance": "1.98809524",
     "maintMargin": "0.00119048", "initialMargin": "0.02380952", "positionInitialMargin": "0.02380952",
     "openOrderInitialMargin": "0.00000000", "maxWithdrawAmount": "1.90000000", "crossWalletBalance": "1.95000000",
     "crossUnPnl": "0.00000000", "availableBalance": "1.90000000", "updateTime": 1625474304765}
  ],
  "positions": [
    {"symbol": "BTCUSD_PERP", "positionAmt": "10", "initialMargin": "0.00096154", "maintMargin": "0.00009615",
     "unrealizedProfit": "0.00076923", "positionInitialMargin": "0.00096154", "openOrderInitialMargin": "0",
     "leverage": "20", "isolated": false, "positionSide": "BOTH", "entryPrice": "50000.0", "breakEvenPrice": "50010.0",
     "maxQty": "250", "updateTime": 1627026881327, "notionalValue": "0.01923077"},
    {"symbol": "ETHUSD_PERP", "positionAmt": "-50", "initialMargin": "0.02380952", "maintMargin": "0.00119048",
     "unrealizedProfit": "-0.01190476", "positionInitialMargin": "0.02380952", "openOrderInitialMargin": "0",
     "leverage": "10", "isolated": true, "positionSide": "BOTH", "entryPrice": "2000.0", "breakEvenPrice": "1999.0",
     "maxQty": "5000", "updateTime": 1627026881327, "notionalValue": "-0.23809524"},
    {"symbol": "BTCUSD_201225", "positionAmt": "0", "initialMargin": "0", "maintMargin": "0",
     "unrealizedProfit": "0.00000000", "positionInitialMargin": "0", "openOrderInitialMargin": "0",
     "leverage": "125", "isolated": false, "positionSide": "BOTH", "entryPrice": "0.0", "breakEvenPrice": "0.0",
     "maxQty": "50", "updateTime": 0, "notionalValue": "0"}
  ],
  "canDeposit": true, "canTrade": true, "canWithdraw": true, "feeTier": 2, "updateTime": 0
}`
	b["/dapi/v1/positionRisk"] = `[
  {"symbol": "BTCUSD_PERP", "positionAmt": "10", "entryPrice": "50000.0", "breakEvenPrice": "50010.0",
   "markPrice": "52000.00000000", "unRealizedProfit": "0.00076923", "liquidationPrice": "30000.00000000",
   "leverage": "20", "maxQty": "250", "marginType": "cross", "isolatedMargin": "0.00000000",
   "isAutoAddMargin": "false", "positionSide": "BOTH", "updateTime": 1627026881327},
  {"symbol": "ETHUSD_PERP", "positionAmt": "-50", "entryPrice": "2000.0", "breakEvenPrice": "1999.0",
   "markPrice": "2100.00000000", "unRealizedProfit": "-0.01190476", "liquidationPrice": "2400.00000000",
   "leverage": "10", "maxQty": "5000", "marginType": "isolated", "isolatedMargin": "0.03809524",
   "isAutoAddMargin": "false", "positionSide": "BOTH", "updateTime": 1627026881327},
  {"symbol": "BTCUSD_201225", "positionAmt": "0", "entryPrice": "0.0", "breakEvenPrice": "0.0",
   "markPrice": "0.00000000", "unRealizedProfit": "0.00000000", "liquidationPrice": "0",
   "leverage": "125", "maxQty": "50", "marginType": "cross", "isolatedMargin": "0.00000000",
   "isAutoAddMargin": "false", "positionSide": "BOTH", "updateTime": 0}
]`
	b["/dapi/v1/premiumIndex"] = `[
  {"symbol":"BTCUSD_PERP","pair":"BTCUSD","markPrice":"52000.00000000","indexPrice":"51990.00000000","estimatedSettlePrice":"51995.00000000","lastFundingRate":"0.00010000","interestRate":"0.00010000","nextFundingTime":1767254400000,"time":1767240000000},
  {"symbol":"ETHUSD_PERP","pair":"ETHUSD","markPrice":"2100.00000000","indexPrice":"2099.00000000","estimatedSettlePrice":"2099.50000000","lastFundingRate":"0.00020000","interestRate":"0.00010000","nextFundingTime":1767254400000,"time":1767240000000},
  {"symbol":"LINKUSD_PERP","pair":"LINKUSD","markPrice":"15.00000000","indexPrice":"15.00000000","estimatedSettlePrice":"15.00000000","lastFundingRate":"0.00010000","interestRate":"0.00010000","nextFundingTime":1767254400000,"time":1767240000000},
  {"symbol":"BTCUSD_260327","pair":"BTCUSD","markPrice":"53000.00000000","indexPrice":"51990.00000000","estimatedSettlePrice":"51995.00000000","lastFundingRate":"","interestRate":"","nextFundingTime":0,"time":1767240000000}
]`
	b["/dapi/v1/exchangeInfo"] = `{"timezone":"UTC","serverTime":1767240000000,"rateLimits":[],"exchangeFilters":[],"symbols":[` +
		coinmSymbol("BTCUSD_PERP", "BTCUSD", "BTC", "PERPETUAL", 100, 4133404800000) + "," + coinmSymbol("ETHUSD_PERP", "ETHUSD", "ETH", "PERPETUAL", 10, 4133404800000) + "," +
		coinmSymbol("LINKUSD_PERP", "LINKUSD", "LINK", "PERPETUAL", 10, 4133404800000) + `]}`
	b["/dapi/v1/openOrders"] = `[
  {"avgPrice":"0.0","clientOrderId":"abc","cumBase":"0","executedQty":"0","orderId":1917641,"origQty":"10","origType":"STOP_MARKET","price":"0","reduceOnly":true,"side":"SELL","positionSide":"BOTH","status":"NEW","stopPrice":"45000","closePosition":false,"symbol":"BTCUSD_PERP","pair":"BTCUSD","time":1579276756075,"timeInForce":"GTC","type":"STOP_MARKET","activatePrice":"0","priceRate":"0","updateTime":1579276756075,"workingType":"CONTRACT_PRICE","priceProtect":false,"priceMatch":"NONE","selfTradePreventionMode":"NONE"},
  {"avgPrice":"0.0","clientOrderId":"abd","cumBase":"0","executedQty":"0","orderId":1917642,"origQty":"50","origType":"LIMIT","price":"1800","reduceOnly":true,"side":"BUY","positionSide":"BOTH","status":"NEW","stopPrice":"0","closePosition":false,"symbol":"ETHUSD_PERP","pair":"ETHUSD","time":1579276756075,"timeInForce":"GTC","type":"LIMIT","activatePrice":"0","priceRate":"0","updateTime":1579276756075,"workingType":"CONTRACT_PRICE","priceProtect":false,"priceMatch":"NONE","selfTradePreventionMode":"NONE"}
]`
	// BTCUSD_PERP's brackets are the fixture's; ETHUSD_PERP's are made up in
	// their shape.
	b["/dapi/v2/leverageBracket"] = `[
  {"symbol":"BTCUSD_PERP","notionalCoef":1.5,"brackets":[{"bracket":1,"initialLeverage":125,"qtyCap":50,"qtylFloor":0,"maintMarginRatio":0.004,"cum":0}]},
  {"symbol":"ETHUSD_PERP","notionalCoef":1.5,"brackets":[{"bracket":1,"initialLeverage":75,"qtyCap":500,"qtylFloor":0,"maintMarginRatio":0.005,"cum":0}]},
  {"symbol":"LINKUSD_PERP","notionalCoef":1.5,"brackets":[{"bracket":1,"initialLeverage":50,"qtyCap":50000,"qtylFloor":0,"maintMarginRatio":0.01,"cum":0}]}
]`
	return scenario{
		bodies:  b,
		candles: map[string]candle{"BTCUSD_PERP": {52000, 400}, "ETHUSD_PERP": {2100, 25}, "LINKUSD_PERP": {15, 0.2}},
		income: []incomeRow{
			{symbol: "BTCUSD_PERP", typ: "FUNDING_FEE", income: "-0.00001000", asset: "BTC", age: 2 * time.Hour},
			{symbol: "ETHUSD_PERP", typ: "FUNDING_FEE", income: "0.00020000", asset: "ETH", age: 10 * time.Hour},
			{symbol: "", typ: "TRANSFER", income: "-0.37500000", asset: "BTC", age: time.Hour},
		},
	}
}

// coinmHedge: COIN-M, hedge mode, built from the official docs examples
// dapi_v1_positionRisk_hedge.json and dapi_v1_account_hedge.json, both
// served as they are:
//
//	BTCUSD_201225 LONG  1 contract × 100 USD @ 11707.70000003, mark 11788.66626667, cross 125x, liq 11667.63509587 (the fixture's row)
//	BTCUSD_201225 SHORT 2 contracts @ 11800, same mark, isolated 125x, margin 0.0002 BTC, liq 12650 (an added row: the fixture's SHORT row is empty)
//
// Binance's account example was taken before the positions opened: every
// maintMargin "0", the BTC asset with wallet 0.00241969 and no PnL or
// maintenance margin. It is served unchanged, because that is what Binance
// can answer (a position opened between the two reads): the positions'
// maintenance margins come from the leverage brackets, and a pool whose
// asset row reports less than its cross positions need is the metrics'
// business (an account margin ratio of 0 while the long is 1% from
// liquidation would be an all-clear by mistake). The exchangeInfo excerpt
// lists only BTCUSD_200925: BTCUSD_201225 is added, assumed built like it
// (contractSize 100, marginAsset BTC, CURRENT_QUARTER, delivery 2020-12-25
// 08:00 UTC). The added short is isolated: a cross short of 2 contracts
// would make the symbol's net cross position short, and the cross legs
// would then share a liquidation price above the mark, which the
// fixture's long row (liquidation below the mark) contradicts. Its brackets are made up with a small first cap so that the
// two sides fall in different brackets: < 0.01 BTC 0.4%; 0.01 to 50 BTC
// 0.5%, cum 0.00001. premiumIndex reports a delivery contract as the docs
// do: lastFundingRate "" and nextFundingTime 0.
// Stops (openOrders): the fixture's TRAILING_STOP_MARKET BUY on the SHORT
// side is of BTCUSD_200925 (not held); added for BTCUSD_201225: a
// STOP_MARKET BUY on the LONG side (it would add to the long: no stop) and
// a copy of the fixture's trailing stop (activation 9020, 0.40 contracts,
// 0.3%) on the SHORT side.
func coinmHedge() scenario {
	b := map[string]string{}
	b["/dapi/v1/positionSide/dual"] = Fixture("dapi_v1_positionSide_dual.json")
	b["/dapi/v1/fundingInfo"] = `[]`
	b["/dapi/v1/forceOrders"] = forceOrdersCOINM("BTCUSD_201225", "LONG")
	b["/dapi/v1/positionRisk"] = withRows(Fixture("dapi_v1_positionRisk_hedge.json"),
		// Added: the short the fixture's empty SHORT row does not hold.
		`{"symbol": "BTCUSD_201225", "positionAmt": "-2", "entryPrice": "11800.0", "breakEvenPrice": "11795.3",
   "markPrice": "11788.66626667", "unRealizedProfit": "0.00001630", "liquidationPrice": "12650.00000000",
   "leverage": "125", "maxQty": "50", "marginType": "isolated", "isolatedMargin": "0.00020000",
   "isAutoAddMargin": "false", "positionSide": "SHORT", "updateTime": 1627026881327}`)
	b["/dapi/v1/account"] = Fixture("dapi_v1_account_hedge.json")
	b["/dapi/v1/premiumIndex"] = `[
  {"symbol":"BTCUSD_201225","pair":"BTCUSD","markPrice":"11788.66626667","indexPrice":"11780.00000000","estimatedSettlePrice":"11785.00000000","lastFundingRate":"","interestRate":"","nextFundingTime":0,"time":1767240000000}
]`
	b["/dapi/v1/exchangeInfo"] = `{"timezone":"UTC","serverTime":1767240000000,"rateLimits":[],"exchangeFilters":[],"symbols":[` +
		coinmSymbol("BTCUSD_200925", "BTCUSD", "BTC", "CURRENT_QUARTER", 100, 1601020800000) + "," +
		coinmSymbol("BTCUSD_201225", "BTCUSD", "BTC", "CURRENT_QUARTER", 100, 1608883200000) + `]}`
	b["/dapi/v2/leverageBracket"] = `[
  {"symbol":"BTCUSD_201225","notionalCoef":1.5,"brackets":[
    {"bracket":1,"initialLeverage":125,"qtyCap":0.01,"qtylFloor":0,"maintMarginRatio":0.004,"cum":0},
    {"bracket":2,"initialLeverage":100,"qtyCap":50,"qtylFloor":0.01,"maintMarginRatio":0.005,"cum":0.00001}]}
]`
	b["/dapi/v1/openOrders"] = withRows(Fixture("dapi_v1_openOrders.json"),
		`{"avgPrice":"0.0","clientOrderId":"abd","cumBase":"0","executedQty":"0","orderId":1917640,"origQty":"1","origType":"STOP_MARKET","price":"0","reduceOnly":false,"side":"BUY","positionSide":"LONG","status":"NEW","stopPrice":"12000","closePosition":false,"symbol":"BTCUSD_201225","pair":"BTCUSD","time":1579276756075,"timeInForce":"GTC","type":"STOP_MARKET","activatePrice":"0","priceRate":"0","updateTime":1579276756075,"workingType":"CONTRACT_PRICE","priceProtect":false,"priceMatch":"NONE","selfTradePreventionMode":"NONE"}`,
		`{"avgPrice":"0.0","clientOrderId":"abc","cumBase":"0","executedQty":"0","orderId":1917642,"origQty":"0.40","origType":"TRAILING_STOP_MARKET","price":"0","reduceOnly":false,"side":"BUY","positionSide":"SHORT","status":"NEW","stopPrice":"9300","closePosition":false,"symbol":"BTCUSD_201225","pair":"BTCUSD","time":1579276756075,"timeInForce":"GTC","type":"TRAILING_STOP_MARKET","activatePrice":"9020","priceRate":"0.3","updateTime":1579276756075,"workingType":"CONTRACT_PRICE","priceProtect":false,"priceMatch":"NONE","selfTradePreventionMode":"NONE"}`)
	return scenario{
		bodies:  b,
		candles: map[string]candle{"BTCUSD_201225": {11788.66626667, 50}},
	}
}

// usdmPools: USDⓈ-M, single-asset mode, one-way, two margin pools.
//
//	ADAUSDT long 30 @ 0.385, mark 0.4104759, cross, maint 0.0800428 (fapi_v3_positionRisk.json's row as it is), USDT pool
//	BTCUSDC long 0.5 @ 60000, mark 58500, cross 20x, maint 117, liq 58433.73 (added), USDC pool
//
// The USDT asset row is the fixture's (fapi_v2_account.json, as it is:
// wallet 23.72469206, no PnL, maintMargin 0 — taken before the ADA
// position opened). Added: the USDC asset row (wallet 900, PnL −750,
// margin balance 150, maint 117: a cross margin ratio of 0.78, 0.11% from
// liquidation) and the top-level totals, which in single-asset mode are
// USDT's alone (so Binance's totals show nothing of the USDC pool), the
// settings rows of both positions and the BTCUSDC position.
// BTCUSDC notional 29250 × 0.4% (bracket 1) = 117; its liquidation price
// solves 900 + 0.5 (P − 60000) = 0.5 P × 0.004: P = 29100 / 0.498.
// No open orders; the fixture's TRANSFER income row (2019) is in the
// history.
func usdmPools() scenario {
	b := map[string]string{}
	usdmCommon(b)
	b["/fapi/v1/positionSide/dual"] = `{"dualSidePosition":false}`
	b["/fapi/v1/multiAssetsMargin"] = `{"multiAssetsMargin":false}`
	usdt := rowsOf(objectField(Fixture("fapi_v2_account.json"), "assets"))[0]
	b["/fapi/v2/account"] = `{
  "feeTier": 0, "feeBurn": true, "canTrade": true, "canDeposit": true, "canWithdraw": true, "updateTime": 0,
  "multiAssetsMargin": false, "tradeGroupId": -1,
  "totalInitialMargin": "0.00000000", "totalMaintMargin": "0.00000000",
  "totalWalletBalance": "23.72469206", "totalUnrealizedProfit": "0.00000000",
  "totalMarginBalance": "23.72469206", "totalPositionInitialMargin": "0.00000000",
  "totalOpenOrderInitialMargin": "0.00000000", "totalCrossWalletBalance": "23.72469206",
  "totalCrossUnPnl": "0.00000000", "availableBalance": "23.72469206", "maxWithdrawAmount": "23.72469206",
  "assets": [` + string(usdt) + `,
    {"asset": "USDC", "walletBalance": "900.00000000", "unrealizedProfit": "-750.00000000", "marginBalance": "150.00000000",
     "maintMargin": "117.00000000", "initialMargin": "1462.50000000", "positionInitialMargin": "1462.50000000",
     "openOrderInitialMargin": "0.00000000", "crossWalletBalance": "900.00000000", "crossUnPnl": "-750.00000000",
     "availableBalance": "0.00000000", "maxWithdrawAmount": "0.00000000", "marginAvailable": true, "updateTime": 1625474304765}
  ],
  "positions": [
    {"symbol": "ADAUSDT", "initialMargin": "0.61571385", "maintMargin": "0.08004280", "unrealizedProfit": "0.76427700",
     "positionInitialMargin": "0.61571385", "openOrderInitialMargin": "0", "leverage": "20", "isolated": false,
     "entryPrice": "0.385", "maxNotional": "250000", "bidNotional": "0", "askNotional": "0",
     "positionSide": "BOTH", "positionAmt": "30", "updateTime": 1720736417660},
    {"symbol": "BTCUSDC", "initialMargin": "1462.5", "maintMargin": "117", "unrealizedProfit": "-750.00000000",
     "positionInitialMargin": "1462.5", "openOrderInitialMargin": "0", "leverage": "20", "isolated": false,
     "entryPrice": "60000.0", "maxNotional": "250000", "bidNotional": "0", "askNotional": "0",
     "positionSide": "BOTH", "positionAmt": "0.500", "updateTime": 1720736417660}
  ]
}`
	b["/fapi/v3/positionRisk"] = withRows(Fixture("fapi_v3_positionRisk.json"),
		`{"symbol": "BTCUSDC", "positionSide": "BOTH", "positionAmt": "0.500", "entryPrice": "60000.0", "breakEvenPrice": "60030.0",
   "markPrice": "58500.00000000", "unRealizedProfit": "-750.00000000", "liquidationPrice": "58433.73493976",
   "isolatedMargin": "0", "notional": "29250.00000000", "marginAsset": "USDC", "isolatedWallet": "0",
   "initialMargin": "1462.5", "maintMargin": "117", "positionInitialMargin": "1462.5", "openOrderInitialMargin": "0",
   "adl": 4, "bidNotional": "0", "askNotional": "0", "updateTime": 1720736417660}`)
	b["/fapi/v1/premiumIndex"] = premiumUSDM(map[string][2]string{
		"ADAUSDT": {"0.41047590", "0.00010000"},
		"BTCUSDC": {"58500.00000000", "0.00010000"},
	}, []string{"ADAUSDT", "BTCUSDC"})
	b["/fapi/v1/leverageBracket"] = withRows(b["/fapi/v1/leverageBracket"],
		`{"symbol":"BTCUSDC","notionalCoef":1.5,"brackets":[
    {"bracket":1,"initialLeverage":125,"notionalCap":50000,"notionalFloor":0,"maintMarginRatio":0.004,"cum":0.0},
    {"bracket":2,"initialLeverage":100,"notionalCap":500000,"notionalFloor":50000,"maintMarginRatio":0.005,"cum":50.0}]}`,
		`{"symbol":"ADAUSDT","notionalCoef":1.5,"brackets":[
    {"bracket":1,"initialLeverage":75,"notionalCap":5000,"notionalFloor":0,"maintMarginRatio":0.0065,"cum":0.0}]}`)
	b["/fapi/v1/openAlgoOrders"] = `[]`
	b["/fapi/v1/openOrders"] = `[]`
	return scenario{
		bodies:  b,
		candles: map[string]candle{"ADAUSDT": {0.41, 0.005}, "BTCUSDC": {58500, 250}},
		income:  rawIncome(Fixture("fapi_v1_income.json")),
	}
}

// usdmMultiAssets: USDⓈ-M, multi-assets mode: fapi_v2_account.json (totals
// in USD 126.72469206 over every asset; its USDT row holds 23.72469206)
// and fapi_v3_positionRisk.json (ADAUSDT long 30, cross, margined in
// USDT), both as they are; one pool "USD" from the totals.
func usdmMultiAssets() scenario {
	b := map[string]string{}
	usdmCommon(b)
	b["/fapi/v1/positionSide/dual"] = `{"dualSidePosition":false}`
	b["/fapi/v1/multiAssetsMargin"] = `{"multiAssetsMargin":true}`
	b["/fapi/v2/account"] = Fixture("fapi_v2_account.json")
	b["/fapi/v3/positionRisk"] = Fixture("fapi_v3_positionRisk.json")
	b["/fapi/v1/premiumIndex"] = premiumUSDM(map[string][2]string{"ADAUSDT": {"0.41047590", "0.00010000"}}, []string{"ADAUSDT"})
	b["/fapi/v1/openAlgoOrders"] = Fixture("fapi_v1_openAlgoOrders.json")
	b["/fapi/v1/openOrders"] = `[]`
	return scenario{bodies: b, candles: map[string]candle{"ADAUSDT": {0.41, 0.005}}}
}

// objectField is the raw value of field in a JSON object ("" if none).
func objectField(body, field string) string {
	var m map[string]json.RawMessage
	if json.Unmarshal([]byte(body), &m) != nil {
		return ""
	}
	return string(m[field])
}

// rawIncome is the rows of an income body, to be served as they are.
func rawIncome(body string) []incomeRow {
	var out []incomeRow
	for _, raw := range rowsOf(body) {
		var r struct {
			Type string `json:"incomeType"`
			Time int64  `json:"time"`
		}
		json.Unmarshal(raw, &r)
		out = append(out, incomeRow{typ: r.Type, at: r.Time, raw: raw})
	}
	return out
}

func premiumUSDM(rows map[string][2]string, order []string) string {
	s := "["
	for i, sym := range order {
		if i > 0 {
			s += ","
		}
		r := rows[sym]
		s += `{"symbol":"` + sym + `","markPrice":"` + r[0] + `","indexPrice":"` + r[0] + `","estimatedSettlePrice":"` + r[0] +
			`","lastFundingRate":"` + r[1] + `","interestRate":"0.00010000","nextFundingTime":1767254400000,"time":1767240000000}`
	}
	return s + "]"
}

func algoOrder(id int, typ, symbol, side, posSide, trigger string, reduceOnly, closePosition bool) string {
	return `{"algoId":` + itoa(id) + `,"clientAlgoId":"MRumok0dkhrP4kCm12AHaB","algoType":"CONDITIONAL","orderType":"` + typ +
		`","symbol":"` + symbol + `","side":"` + side + `","positionSide":"` + posSide + `","timeInForce":"GTC","quantity":"0.01","algoStatus":"NEW","actualOrderId":"","actualPrice":"0.00000","triggerPrice":"` + trigger +
		`","price":"0.000","icebergQuantity":null,"tpTriggerPrice":"0.000","tpPrice":"0.000","slTriggerPrice":"0.000","slPrice":"0.000","tpOrderType":"","selfTradePreventionMode":"EXPIRE_MAKER","workingType":"CONTRACT_PRICE","priceMatch":"NONE","closePosition":` +
		tf(closePosition) + `,"priceProtect":false,"reduceOnly":` + tf(reduceOnly) + `,"createTime":1750514941540,"updateTime":1750514941540,"triggerTime":0,"goodTillDate":0}`
}

func openOrder(id int, typ, symbol, side, posSide, stop string, reduceOnly, closePosition bool) string {
	return `{"avgPrice":"0.00000","clientOrderId":"abc","cumQuote":"0","executedQty":"0","orderId":` + itoa(id) + `,"origQty":"1.00","origType":"` + typ +
		`","price":"0","reduceOnly":` + tf(reduceOnly) + `,"side":"` + side + `","positionSide":"` + posSide + `","status":"NEW","stopPrice":"` + stop +
		`","closePosition":` + tf(closePosition) + `,"symbol":"` + symbol + `","time":1579276756075,"timeInForce":"GTC","type":"` + typ +
		`","activatePrice":"0","priceRate":"0","updateTime":1579276756075,"workingType":"CONTRACT_PRICE","priceProtect":false,"priceMatch":"NONE","selfTradePreventionMode":"NONE","goodTillDate":0}`
}

func coinmSymbol(symbol, pair, asset, contractType string, size int, delivery int64) string {
	return `{"filters":[{"filterType":"PRICE_FILTER","maxPrice":"100000","minPrice":"0.1","tickSize":"0.1"}],"OrderType":["LIMIT","MARKET","STOP","TAKE_PROFIT","TRAILING_STOP_MARKET"],"timeInForce":["GTC","IOC","FOK","GTX"],"liquidationFee":"0.010000","marketTakeBound":"0.30",` +
		`"symbol":"` + symbol + `","pair":"` + pair + `","contractType":"` + contractType + `","deliveryDate":` + strconv.FormatInt(delivery, 10) + `,"onboardDate":1590739200000,"contractStatus":"TRADING","contractSize":` + itoa(size) +
		`,"quoteAsset":"USD","baseAsset":"` + asset + `","marginAsset":"` + asset + `","pricePrecision":1,"quantityPrecision":0,"baseAssetPrecision":8,"quotePrecision":8,"equalQtyPrecision":4,"triggerProtect":"0.0500","maintMarginPercent":"2.5000","requiredMarginPercent":"5.0000","underlyingType":"COIN","underlyingSubType":[]}`
}

func tf(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func itoa(i int) string {
	const digits = "0123456789"
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{digits[i%10]}, b...)
	}
	return string(b)
}

// Order is an open order in the shape of the fixtures
// fapi_v1_openOrders.json (OrderRow) and fapi_v1_openAlgoOrders.json
// (AlgoOrderRow), for tests that add orders to an account.
type Order struct {
	ID                               int
	Type, Symbol, Side, PositionSide string
	// Trigger is stopPrice (triggerPrice for an algo order), Quantity
	// origQty (quantity); Activate and Rate are a trailing stop's
	// activatePrice and priceRate (callbackRate), in percent.
	Trigger, Quantity, Activate, Rate string
	ReduceOnly, ClosePosition         bool
}

// OrderRow is o as a row of GET /fapi/v1/openOrders.
func OrderRow(o Order) string {
	return `{"avgPrice":"0.00000","clientOrderId":"abc","cumQuote":"0","executedQty":"0","orderId":` + itoa(o.ID) + `,"origQty":"` + or(o.Quantity, "0") + `","origType":"` + o.Type +
		`","price":"0","reduceOnly":` + tf(o.ReduceOnly) + `,"side":"` + o.Side + `","positionSide":"` + o.PositionSide + `","status":"NEW","stopPrice":"` + or(o.Trigger, "0") +
		`","closePosition":` + tf(o.ClosePosition) + `,"symbol":"` + o.Symbol + `","time":1579276756075,"timeInForce":"GTC","type":"` + o.Type +
		`","activatePrice":"` + or(o.Activate, "0") + `","priceRate":"` + or(o.Rate, "0") + `","updateTime":1579276756075,"workingType":"CONTRACT_PRICE","priceProtect":false,"priceMatch":"NONE","selfTradePreventionMode":"NONE","goodTillDate":0}`
}

// AlgoOrderRow is o as a row of GET /fapi/v1/openAlgoOrders; a trailing
// stop's activatePrice and callbackRate are there only when set.
func AlgoOrderRow(o Order) string {
	trailing := ""
	if o.Activate != "" {
		trailing += `"activatePrice":"` + o.Activate + `",`
	}
	if o.Rate != "" {
		trailing += `"callbackRate":"` + o.Rate + `",`
	}
	return `{"algoId":` + itoa(o.ID) + `,"clientAlgoId":"MRumok0dkhrP4kCm12AHaB","algoType":"CONDITIONAL","orderType":"` + o.Type +
		`","symbol":"` + o.Symbol + `","side":"` + o.Side + `","positionSide":"` + o.PositionSide + `","timeInForce":"GTC","quantity":"` + or(o.Quantity, "0") + `","algoStatus":"NEW","actualOrderId":"","actualPrice":"0.00000","triggerPrice":"` + or(o.Trigger, "0") +
		`","price":"0.000","icebergQuantity":null,"tpTriggerPrice":"0.000","tpPrice":"0.000","slTriggerPrice":"0.000","slPrice":"0.000","tpOrderType":"","selfTradePreventionMode":"EXPIRE_MAKER","workingType":"CONTRACT_PRICE","priceMatch":"NONE",` + trailing + `"closePosition":` +
		tf(o.ClosePosition) + `,"priceProtect":false,"reduceOnly":` + tf(o.ReduceOnly) + `,"createTime":1750514941540,"updateTime":1750514941540,"triggerTime":0,"goodTillDate":0}`
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
