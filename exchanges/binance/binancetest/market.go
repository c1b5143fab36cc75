package binancetest

import "net/http"

// serveMarket serves the mark-price streams. Not yet built.
func (s *Server) serveMarket(w http.ResponseWriter, r *http.Request) {
	http.NotFound(w, r)
}
