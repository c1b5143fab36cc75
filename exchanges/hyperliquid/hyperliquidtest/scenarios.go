package hyperliquidtest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// num formats v as Hyperliquid does: a decimal string.
func num(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// float reads a decoded JSON number or decimal string.
func float(v any) (float64, bool) {
	switch x := v.(type) {
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// positions returns the decoded position objects of coin.
func (s *Server) positions(coin string) []map[string]any {
	st, _ := s.docs["clearinghouseState"].decoded().(map[string]any)
	aps, _ := st["assetPositions"].([]any)
	var out []map[string]any
	for _, ap := range aps {
		m, _ := ap.(map[string]any)
		p, _ := m["position"].(map[string]any)
		if p != nil && p["coin"] == coin {
			out = append(out, p)
		}
	}
	return out
}

// SetMark moves coin's mark price to px: its position's positionValue
// (|szi| × px) and unrealizedPnl (szi × (px − entryPx)), and the markPx of
// its asset context. The summaries are left as they are.
func (s *Server) SetMark(coin string, px float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.positions(coin)
	if len(ps) == 0 {
		return fmt.Errorf("hyperliquidtest: no %s position in the account", coin)
	}
	for _, p := range ps {
		szi, ok1 := float(p["szi"])
		entry, ok2 := float(p["entryPx"])
		if !ok1 || !ok2 {
			return fmt.Errorf("hyperliquidtest: %s position without szi/entryPx", coin)
		}
		p["positionValue"] = num(math.Abs(szi) * px)
		p["unrealizedPnl"] = num(szi * (px - entry))
	}
	pair, _ := s.docs["metaAndAssetCtxs"].decoded().([]any)
	if len(pair) == 2 {
		meta, _ := pair[0].(map[string]any)
		uni, _ := meta["universe"].([]any)
		ctxs, _ := pair[1].([]any)
		for i, u := range uni {
			if m, _ := u.(map[string]any); m != nil && m["name"] == coin && i < len(ctxs) {
				if c, _ := ctxs[i].(map[string]any); c != nil {
					c["markPx"] = num(px)
				}
			}
		}
	}
	return nil
}

// SetLiquidationPx sets coin's served liquidationPx; px <= 0 serves null.
func (s *Server) SetLiquidationPx(coin string, px float64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ps := s.positions(coin)
	if len(ps) == 0 {
		return fmt.Errorf("hyperliquidtest: no %s position in the account", coin)
	}
	for _, p := range ps {
		if px > 0 {
			p["liquidationPx"] = num(px)
		} else {
			p["liquidationPx"] = nil
		}
	}
	return nil
}

// AddStop rests a copy of the fixture's reduce-only "Stop Market" order
// for coin: side "A" (sell, closes a long) or "B", at trigger, for sz, and
// pushes its orderUpdates frame (status "open") to every orderUpdates
// subscriber.
func (s *Server) AddStop(coin, side string, trigger, sz float64) error {
	row, err := s.addStop(coin, side, trigger, sz)
	if err != nil {
		return err
	}
	s.pushOrders([]map[string]any{row}, "open")
	return nil
}

func (s *Server) addStop(coin, side string, trigger, sz float64) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.docs["frontendOpenOrders"]
	rows, _ := d.decoded().([]any)
	var model map[string]any
	for _, r := range rows {
		if m, _ := r.(map[string]any); m != nil && m["orderType"] == "Stop Market" {
			model = m
			break
		}
	}
	if model == nil {
		return nil, fmt.Errorf("hyperliquidtest: the orders hold no Stop Market to copy")
	}
	b, _ := json.Marshal(model)
	var row map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&row); err != nil {
		return nil, err
	}
	row["coin"], row["side"] = coin, side
	row["triggerPx"], row["sz"], row["origSz"] = num(trigger), num(sz), num(sz)
	row["oid"] = json.Number(strconv.Itoa(9000000000 + len(rows)))
	cond := "below"
	if side == "B" {
		cond = "above"
	}
	row["triggerCondition"] = "Price " + cond + " " + num(trigger)
	d.tree = append(rows, row)
	return row, nil
}

// CancelStops removes the stops AddStop rested on coin and pushes their
// orderUpdates frame (status "canceled") to every orderUpdates subscriber.
func (s *Server) CancelStops(coin string) {
	s.mu.Lock()
	d := s.docs["frontendOpenOrders"]
	rows, _ := d.decoded().([]any)
	kept := rows[:0:0]
	var gone []map[string]any
	for _, r := range rows {
		m, _ := r.(map[string]any)
		if m != nil && m["coin"] == coin {
			if oid, ok := float(m["oid"]); ok && oid >= 9000000000 {
				gone = append(gone, m)
				continue
			}
		}
		kept = append(kept, r)
	}
	d.tree = kept
	s.mu.Unlock()
	if len(gone) > 0 {
		s.pushOrders(gone, "canceled")
	}
}
