package binancetest

import (
	"net/http"
	"net/http/httptest"
)

// Transport returns an http.RoundTripper that serves every request with
// the fake's Handler in the caller's goroutine: no socket, so it works
// inside testing/synctest bubbles, where the fake's clock can be the
// bubble's. Websocket upgrades are not served this way.
func (s *Server) Transport() http.RoundTripper { return inproc{s.Handler()} }

type inproc struct{ h http.Handler }

func (t inproc) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	if req.Body != nil {
		req.Body.Close()
	}
	resp := rec.Result()
	resp.Request = req
	if err := req.Context().Err(); err != nil && rec.Code == http.StatusOK && rec.Body.Len() == 0 {
		return nil, err // a hung request the client gave up on
	}
	return resp, nil
}
