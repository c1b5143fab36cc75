package binancetest

import (
	"net/http"
	"strings"
)

// serveWS routes a websocket upgrade: market data (USDⓈ-M /market/…,
// combined /stream…, COIN-M /ws/<symbol>@markPrice…) to serveMarket
// (market.go), user data (USDⓈ-M /private/ws?listenKey=…, COIN-M
// /ws/<listenKey>) to serveUser (userstream.go).
func (s *Server) serveWS(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if strings.Contains(p, "@") || strings.HasPrefix(p, "/market/") || strings.Contains(p, "/stream") {
		s.serveMarket(w, r)
		return
	}
	s.serveUser(w, r)
}
