package binance

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/marginwatch/marginwatch/exchanges"
	"github.com/marginwatch/marginwatch/exchanges/binance/binancetest"
	"github.com/marginwatch/marginwatch/watcher/config"
)

type redirector struct {
	mu    sync.Mutex
	code  int
	hosts []string
}

func (r *redirector) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.hosts = append(r.hosts, req.URL.Scheme+"://"+req.URL.Host)
	r.mu.Unlock()
	h := http.Header{}
	h.Set("Location", "http://evil.invalid/steal")
	// A body go-binance would decode as an empty account if it saw the
	// 30x as an answer.
	return &http.Response{StatusCode: r.code, Body: io.NopCloser(strings.NewReader("{}")), Header: h, Request: req}, nil
}

// TestRedirectNotFollowed: a 30x is a transient error naming the request;
// the API key never goes to the Location and the 30x is never read as an
// (empty) answer.
func TestRedirectNotFollowed(t *testing.T) {
	for _, exchange := range []string{"binance-usdm", "binance-coinm"} {
		for _, code := range []int{301, 302, 307, 308} {
			t.Run(exchange+"/"+strconv.Itoa(code), func(t *testing.T) {
				rt := &redirector{code: code}
				const endpoint = "https://binance.invalid"
				t.Cleanup(func() {
					limitsMu.Lock()
					delete(limits, hostOf(endpoint))
					limitsMu.Unlock()
				})
				ex, err := New(config.Account{Name: "main", Exchange: exchange, APIKey: binancetest.Key, APISecret: binancetest.Secret,
					Endpoint: endpoint}, Options{HTTPClient: &http.Client{Transport: rt}})
				if err != nil {
					t.Fatal(err)
				}
				defer ex.Close()
				for what, call := range map[string]func() error{
					"CheckKey": func() error { return ex.CheckKey(context.Background()) },
					"Snapshot": func() error { _, err := ex.Snapshot(context.Background()); return err },
				} {
					err := call()
					if err == nil || !strings.Contains(err.Error(), "redirect") || !strings.Contains(err.Error(), "GET /") {
						t.Errorf("%s: err = %v, want a redirect error naming the request", what, err)
					}
					if errors.Is(err, exchanges.ErrPermanent) {
						t.Errorf("%s: err = %v is permanent, want transient", what, err)

					}
				}
				rt.mu.Lock()
				defer rt.mu.Unlock()
				for _, h := range rt.hosts {
					if h != endpoint {
						t.Errorf("a request went to %s", h)
					}
				}
			})
		}
	}
}
