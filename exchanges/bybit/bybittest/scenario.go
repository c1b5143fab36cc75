package bybittest

// Hedge loads the account the tests compute by hand (every row a copy of
// the fixture's row with these fields set):
//
// Wallet: totalWalletBalance 10000, totalPerpUPL 200, totalMarginBalance
// 10200, totalEquity 10250, totalAvailableBalance 7000,
// totalMaintenanceMargin 123.456 (accountMMRate "0.0121", truncated).
// BTCUSDT hedge mode, liqPrice 40000 on both legs, mark 61000, 10x:
// long (positionIdx 1) 0.5 @ 60000, PnL 500, MM 60; short (positionIdx 2)
// 0.2 @ 62000, PnL 200, MM 24, position stopLoss 65000.
// ETHUSDC one-way short 5 @ 3000, mark 3100, liq 3500, 5x, PnL −500, MM 20.
// Conditional orders: BTCUSDT Sell positionIdx 1 StopLoss at 55000 (close
// position); BTCUSDT Sell positionIdx 1 TakeProfit at 70000 (not a stop);
// ETHUSDC Buy reduce-only Stop rising to 3300 for 2 (a 40% stop); ETHUSDC
// Buy Stop at 3200 for 1 not reduce-only (opens: not a stop).
// Funding: BTCUSDT 0.0001 per 480 min, ETHUSDC −0.0002 per 240 min. The
// transaction log is the fixture's (one SETTLEMENT, funding −0.003676).
func (s *Server) Hedge() {
	s.SetWallet(map[string]any{
		"totalWalletBalance": "10000", "totalPerpUPL": "200", "totalMarginBalance": "10200", "totalEquity": "10250",
		"totalAvailableBalance": "7000", "totalMaintenanceMargin": "123.456", "accountMMRate": "0.0121",
	})
	s.SetPositions(
		map[string]any{"symbol": "BTCUSDT", "side": "Buy", "positionIdx": 1, "size": "0.5", "avgPrice": "60000", "markPrice": "61000",
			"liqPrice": "40000", "leverage": "10", "unrealisedPnl": "500", "positionMM": "60", "positionIM": "3000", "stopLoss": "", "positionValue": "30000"},
		map[string]any{"symbol": "BTCUSDT", "side": "Sell", "positionIdx": 2, "size": "0.2", "avgPrice": "62000", "markPrice": "61000",
			"liqPrice": "40000", "leverage": "10", "unrealisedPnl": "200", "positionMM": "24", "positionIM": "1240", "stopLoss": "65000", "positionValue": "12400"},
		map[string]any{"symbol": "ETHUSDC", "side": "Sell", "positionIdx": 0, "size": "5", "avgPrice": "3000", "markPrice": "3100",
			"liqPrice": "3500", "leverage": "5", "unrealisedPnl": "-500", "positionMM": "20", "positionIM": "3000", "stopLoss": "0.00", "positionValue": "15000"},
	)
	s.SetStopOrders(
		map[string]any{"symbol": "BTCUSDT", "side": "Sell", "positionIdx": 1, "orderType": "Market", "stopOrderType": "StopLoss", "triggerPrice": "55000",
			"qty": "0", "reduceOnly": true, "closeOnTrigger": true, "triggerDirection": 2, "orderStatus": "Untriggered"},
		map[string]any{"symbol": "BTCUSDT", "side": "Sell", "positionIdx": 1, "orderType": "Market", "stopOrderType": "TakeProfit", "triggerPrice": "70000",
			"qty": "0", "reduceOnly": true, "closeOnTrigger": true, "triggerDirection": 1, "orderStatus": "Untriggered"},
		map[string]any{"symbol": "ETHUSDC", "side": "Buy", "positionIdx": 0, "orderType": "Market", "stopOrderType": "Stop", "triggerPrice": "3300",
			"qty": "2", "reduceOnly": true, "closeOnTrigger": false, "triggerDirection": 1, "orderStatus": "Untriggered"},
		map[string]any{"symbol": "ETHUSDC", "side": "Buy", "positionIdx": 0, "orderType": "Market", "stopOrderType": "Stop", "triggerPrice": "3200",
			"qty": "1", "reduceOnly": false, "closeOnTrigger": false, "triggerDirection": 1, "orderStatus": "Untriggered"},
	)
	s.SetTickers(
		map[string]any{"symbol": "BTCUSDT", "markPrice": "61000", "fundingRate": "0.0001", "nextFundingTime": "1760371200000", "fundingIntervalHour": "8"},
		map[string]any{"symbol": "ETHUSDC", "markPrice": "3100", "fundingRate": "-0.0002", "nextFundingTime": "1760371200000", "fundingIntervalHour": "4"},
	)
	s.SetInstruments(
		map[string]any{"symbol": "BTCUSDT", "fundingInterval": 480, "settleCoin": "USDT"},
		map[string]any{"symbol": "ETHUSDC", "fundingInterval": 240, "settleCoin": "USDC", "quoteCoin": "USDC"},
	)
}
