package hyperliquidtest

import (
	"net/http"
	"net/http/httptest"
)

// Transport returns an http.RoundTripper that serves every request with
// the fake's Handler in the caller's goroutine: no socket, so it works
// inside testing/synctest bubbles.
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
	return resp, nil
}
