package main

import (
	"fmt"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// guardAPI keeps web browsers out of the admin API h: on the default
// loopback listen without a token, any page the trader visits could
// otherwise silence every alert. It refuses with 403
//   - any request whose Host is not a loopback name or IP, nor the listen's
//     host (DNS rebinding: a page's own name resolving to 127.0.0.1), and
//   - a write (any method but GET and HEAD) that a browser marks as coming
//     from a page: an Origin header, or Sec-Fetch-Site other than
//     same-origin or none,
//
// and a write without Content-Type: application/json with 415 (a browser
// sends only text/plain and form bodies without asking first). The token
// check comes after, in controlAPI.write.
func guardAPI(h http.Handler, policy func() writePolicy, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		code, why := policy().screen(r)
		if code != 0 {
			// The reason quotes the Host or Origin, never a header that
			// could carry a token.
			log.Warn("admin API request refused", "reason", why, "remote", r.RemoteAddr, "method", r.Method, "path", r.URL.Path)
			writeError(w, code, why)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// screen is guardAPI's verdict on r: 0 to serve it, else the status and
// why.
func (p writePolicy) screen(r *http.Request) (int, string) {
	if !p.hostAllowed(r.Host) {
		return http.StatusForbidden, fmt.Sprintf("Host %q is neither this machine's loopback nor the listen address: the admin API answers only requests addressed to localhost, 127.0.0.1, [::1] or the host in `listen`", clip(r.Host))
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return 0, ""
	}
	if o := r.Header.Get("Origin"); o != "" {
		return http.StatusForbidden, fmt.Sprintf("the request comes from a web page (Origin %q): the admin API takes no writes from browsers; use marginwatch silence/ack or curl", clip(o))
	}
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" && s != "same-origin" && s != "none" {
		return http.StatusForbidden, fmt.Sprintf("the request comes from a web page (Sec-Fetch-Site %q): the admin API takes no writes from browsers; use marginwatch silence/ack or curl", clip(s))
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return http.StatusUnsupportedMediaType, "a write needs the header Content-Type: application/json (and a JSON body; {} will do for an ack or an expire)"
	}
	return 0, ""
}

// hostAllowed reports whether a request's Host (host or host:port) names
// this daemon: a loopback name or IP, the listen's host, or, when the
// listen is every interface, any IP literal (a rebinding page always
// comes with its own name). An empty Host (HTTP/1.0) names nothing a page
// could rebind.
func (p writePolicy) hostAllowed(hostport string) bool {
	if hostport == "" {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	} else {
		host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	}
	host = strings.TrimSuffix(host, ".")
	listen := strings.TrimSuffix(p.host, ".")
	if strings.EqualFold(host, "localhost") || (listen != "" && strings.EqualFold(host, listen)) {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	ip = ip.Unmap()
	if ip.IsLoopback() {
		return true
	}
	l, err := netip.ParseAddr(listen)
	if listen == "" || (err == nil && l.Unmap().IsUnspecified()) {
		return true
	}
	return err == nil && l.Unmap() == ip
}

// clip bounds a client's header value quoted in a log line or an answer.
func clip(s string) string {
	const max = 100
	if len(s) <= max {
		return s
	}
	return s[:max] + "…"
}
