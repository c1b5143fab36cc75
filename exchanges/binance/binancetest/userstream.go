package binancetest

import "net/http"

// serveUser serves the user-data streams. Not yet built.
func (s *Server) serveUser(w http.ResponseWriter, r *http.Request) {
	http.NotFound(w, r)
}
