package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// serveAPI sends one request to the admin handler of ctl under policy p,
// with Host host and the given headers, and returns the status and body.
func serveAPI(t *testing.T, h http.Handler, method, path, host, body string, header map[string]string) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Host = host
	for k, v := range header {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// TestAdminAPIRefusesCrossSite: with the default config (loopback listen,
// no token) a web page the trader visits must not reach the admin API: a
// text/plain or form POST (a CORS "simple request", sent with no
// preflight), a request a browser marks cross-site or gives an Origin, and
// one with a foreign Host (DNS rebinding, reads too) are refused before
// the daemon is touched, with a JSON error and a log line that quotes no
// token.
func TestAdminAPIRefusesCrossSite(t *testing.T) {
	const token = "s3cr3t-admin-t0ken-value"
	const local = "127.0.0.1:9464"
	silenceBody := `{"matchers": ["rule=~.+"], "duration": "8760h"}`
	jsonCT := map[string]string{"Content-Type": "application/json"}
	with := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		name, method, path, host, body string
		header                         map[string]string
		code                           int
		want                           string
	}{
		{"fetch no-cors text/plain", "POST", silencesPath, local, silenceBody,
			with("Content-Type", "text/plain;charset=UTF-8", "Origin", "https://evil.example", "Sec-Fetch-Site", "cross-site"), 403, "browser"},
		{"text/plain, no Origin (old browser)", "POST", silencesPath, local, silenceBody, with("Content-Type", "text/plain"), 415, "Content-Type: application/json"},
		{"form post ack", "POST", alertsPath + "a1b2/ack", local, "author=x", with("Content-Type", "application/x-www-form-urlencoded"), 415, "Content-Type: application/json"},
		{"ack without Content-Type", "POST", alertsPath + "a1b2/ack", local, "", nil, 415, "Content-Type: application/json"},
		{"expire without Content-Type", "DELETE", silencesPath + "/s1", local, "", nil, 415, "Content-Type: application/json"},
		{"JSON with a foreign Origin", "POST", silencesPath, local, silenceBody, with("Content-Type", "application/json", "Origin", "https://evil.example"), 403, "browser"},
		{"JSON with Origin null", "POST", alertsPath + "a1b2/ack", local, "{}", with("Content-Type", "application/json", "Origin", "null"), 403, "browser"},
		{"same-site fetch", "POST", alertsPath + "a1b2/ack", local, "{}", with("Content-Type", "application/json", "Sec-Fetch-Site", "same-site"), 403, "browser"},
		{"cross-site fetch", "DELETE", silencesPath + "/s1", local, "{}", with("Content-Type", "application/json", "Sec-Fetch-Site", "cross-site"), 403, "browser"},
		{"rebinding ack", "POST", alertsPath + "a1b2/ack", "rebind.evil.example:9464", "{}", jsonCT, 403, `Host "rebind.evil.example:9464"`},
		{"rebinding silence", "POST", silencesPath, "rebind.evil.example", silenceBody, jsonCT, 403, "Host"},
		{"rebinding status read", "GET", statusPath, "rebind.evil.example:9464", "", nil, 403, "Host"},
		{"rebinding silences read", "GET", silencesPath, "127.0.0.1.evil.example:9464", "", nil, 403, "Host"},
		{"rebinding unknown endpoint", "GET", "/api/v1/nope", "evil.example", "", nil, 403, "Host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, p := range []writePolicy{{loopback: true, host: "127.0.0.1"}, {token: token, loopback: true, host: "127.0.0.1"}} {
				ctl := &fakeControl{view: apiView}
				logs := &lockedBuffer{}
				h := adminHandler(http.NotFoundHandler(), ctl, func() writePolicy { return p }, slog.New(slog.NewTextHandler(logs, nil)))
				header := map[string]string{"Authorization": "Bearer " + token}
				for k, v := range tc.header {
					header[k] = v
				}
				code, body := serveAPI(t, h, tc.method, tc.path, tc.host, tc.body, header)
				var e apiError
				if code != tc.code || json.Unmarshal([]byte(body), &e) != nil || !strings.Contains(e.Error, tc.want) {
					t.Errorf("token %t: %d %s; want %d and a JSON error with %q", p.token != "", code, body, tc.code, tc.want)
				}
				if len(ctl.Silences()) != 0 || len(ctl.acked) != 0 {
					t.Errorf("token %t: the daemon was written: silences %+v, acks %q", p.token != "", ctl.Silences(), ctl.acked)
				}
				log := logs.String()
				if !strings.Contains(log, "level=WARN msg=\"admin API request refused\"") || !strings.Contains(log, "path="+tc.path) {
					t.Errorf("token %t: the refusal is not logged with its path:\n%s", p.token != "", log)
				}
				if strings.Contains(log, "s3cr3t") || strings.Contains(body, "s3cr3t") {
					t.Errorf("token %t: the token is in the log or the answer:\n%s\n%s", p.token != "", log, body)
				}
			}
		})
	}
}

// TestAdminAPIAllowsLocalClients: what the CLI, status and curl on this
// machine send is served: a loopback Host in any spelling or the listen's
// own host, a JSON Content-Type (with parameters), Sec-Fetch-Site none or
// same-origin; /metrics and /healthz are not the API's to guard.
func TestAdminAPIAllowsLocalClients(t *testing.T) {
	jsonCT := map[string]string{"Content-Type": "application/json"}
	for _, tc := range []struct {
		name, method, path, host, body string
		header                         map[string]string
		policy                         writePolicy
		code                           int
	}{
		{"status on 127.0.0.1", "GET", statusPath, "127.0.0.1:9464", "", nil, writePolicy{loopback: true}, 200},
		{"status on 127.9.8.7", "GET", statusPath, "127.9.8.7:9464", "", nil, writePolicy{loopback: true}, 200},
		{"status on localhost", "GET", statusPath, "localhost:9464", "", nil, writePolicy{loopback: true}, 200},
		{"status on LOCALHOST.", "GET", statusPath, "LOCALHOST.:9464", "", nil, writePolicy{loopback: true}, 200},
		{"status on [::1]", "GET", statusPath, "[::1]:9464", "", nil, writePolicy{loopback: true}, 200},
		{"status on ::ffff:127.0.0.1", "GET", statusPath, "[::ffff:127.0.0.1]:9464", "", nil, writePolicy{loopback: true}, 200},
		{"status without a port", "GET", statusPath, "localhost", "", nil, writePolicy{loopback: true}, 200},
		{"status on the listen host", "GET", statusPath, "marginwatch.lan:9464", "", nil, writePolicy{token: "t", host: "marginwatch.lan"}, 200},
		{"status on the listen host, other case", "GET", statusPath, "MarginWatch.LAN.:9464", "", nil, writePolicy{token: "t", host: "marginwatch.lan"}, 200},
		{"status on the listen IP", "GET", silencesPath, "192.0.2.1:9464", "", nil, writePolicy{token: "t", host: "192.0.2.1"}, 200},
		{"status on another host of a named listen", "GET", statusPath, "other.lan:9464", "", nil, writePolicy{token: "t", host: "marginwatch.lan"}, 403},
		{"status on an address of a wildcard listen", "GET", statusPath, "192.0.2.7:9464", "", nil, writePolicy{token: "t", host: "0.0.0.0"}, 200},
		{"status on an IPv6 address of a wildcard listen", "GET", statusPath, "[2001:db8::7]:9464", "", nil, writePolicy{token: "t", host: "::"}, 200},
		{"status on a name, wildcard listen", "GET", statusPath, "evil.example:9464", "", nil, writePolicy{token: "t", host: ""}, 403},
		{"metrics on any Host", "GET", "/metrics", "evil.example", "", nil, writePolicy{loopback: true}, 404},
		{"ack, empty JSON body", "POST", alertsPath + "a1b2/ack", "127.0.0.1:9464", "", jsonCT, writePolicy{loopback: true}, 200},
		{"ack, JSON with charset", "POST", alertsPath + "a1b2/ack", "127.0.0.1:9464", "{}", map[string]string{"Content-Type": "Application/JSON; charset=utf-8"}, writePolicy{loopback: true}, 200},
		{"ack, Sec-Fetch-Site none", "POST", alertsPath + "a1b2/ack", "127.0.0.1:9464", "{}", map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "none"}, writePolicy{loopback: true}, 200},
		{"silence, Sec-Fetch-Site same-origin", "POST", silencesPath, "localhost:9464", `{"matchers": ["rule=x"], "duration": "1h"}`, map[string]string{"Content-Type": "application/json", "Sec-Fetch-Site": "same-origin"}, writePolicy{loopback: true}, 201},
		{"expire with {}", "DELETE", silencesPath + "/nope", "127.0.0.1:9464", "{}", jsonCT, writePolicy{loopback: true}, 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := adminHandler(http.NotFoundHandler(), &fakeControl{view: apiView}, func() writePolicy { return tc.policy }, slog.New(slog.DiscardHandler))
			header := map[string]string{"Authorization": "Bearer t"}
			for k, v := range tc.header {
				header[k] = v
			}
			if code, body := serveAPI(t, h, tc.method, tc.path, tc.host, tc.body, header); code != tc.code {
				t.Errorf("%s %s with Host %q: %d %s; want %d", tc.method, tc.path, tc.host, code, body, tc.code)
			}
		})
	}
}
