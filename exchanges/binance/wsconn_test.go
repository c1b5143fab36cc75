package binance

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// A half-open connection — the server says nothing, not even a ping — is
// closed after wsReadTimeout and reported; one the server pings stays.
func TestServeWSReadTimeout(t *testing.T) {
	defer func(d time.Duration) { wsReadTimeout = d }(wsReadTimeout)
	wsReadTimeout = 300 * time.Millisecond
	for _, tc := range []struct {
		name  string
		pings bool
		dies  bool
	}{
		{"silent server", false, true},
		{"pinging server", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c, err := websocket.Accept(w, r, nil)
				if err != nil {
					return
				}
				defer c.CloseNow()
				ctx := c.CloseRead(r.Context())
				for {
					select {
					case <-ctx.Done():
						return
					case <-time.After(100 * time.Millisecond):
						if tc.pings {
							pctx, cancel := context.WithTimeout(ctx, time.Second)
							err := c.Ping(pctx)
							cancel()
							if err != nil {
								return
							}
						}
					}
				}
			}))
			defer srv.Close()
			errs := make(chan error, 1)
			done, stop, err := serveWS("ws"+strings.TrimPrefix(srv.URL, "http"), func([]byte) {}, func(err error) { errs <- err })
			if err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
				if !tc.dies {
					t.Fatalf("a pinged connection was closed: %v", <-errs)
				}
				if err := <-errs; err == nil {
					t.Error("the dead connection was closed without an error")
				}
			case <-time.After(3 * wsReadTimeout):
				if tc.dies {
					t.Fatal("a silent connection outlived the read timeout")
				}
				stop <- struct{}{}
				<-done
			}
		})
	}
}
