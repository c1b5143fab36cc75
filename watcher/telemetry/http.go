package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Server limits. Scrapes and probes are small and local; the limits only
// keep a stuck or hostile client from pinning connections forever.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	// shutdownTimeout bounds the graceful shutdown so SIGTERM still exits
	// within the daemon's 10 s budget.
	shutdownTimeout = 5 * time.Second
)

// Handler serves GET /metrics (the registry in the Prometheus exposition
// formats) and GET /healthz, which answers 200 "ok" when health reports ok
// and 503 with its detail otherwise, e.g. "account main: no fresh data for
// 75s". Any other path is 404. A nil health always reports ok.
func (m *Metrics) Handler(health func() (ok bool, detail string)) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(m.reg, promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// One failing collector (say, the outbox read) must not take
		// every other metric down with it; the failure is counted in
		// promhttp_metric_handler_errors_total instead.
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            m.reg,
		Timeout:             writeTimeout - time.Second,
		MaxRequestsInFlight: 4,
	})))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		ok, detail := true, ""
		if health != nil {
			ok, detail = health()
		}
		if ok {
			_, _ = fmt.Fprint(w, "ok\n")
			return
		}
		if detail == "" {
			detail = "unhealthy"
		}
		if !strings.HasSuffix(detail, "\n") {
			detail += "\n"
		}
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprint(w, detail)
	})
	return mux
}

// Serve serves h on addr (host:port) until ctx is done, then shuts down
// gracefully, giving in-flight requests at most 5 s. It returns nil after a
// clean shutdown. An address already in use is reported with the address
// and what to change.
func Serve(ctx context.Context, addr string, h http.Handler, logger *slog.Logger) error {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("admin server: listen %s: address already in use (is another marginwatch or exporter running? choose another port in `listen`, or set it to \"\" to disable the admin server): %w", addr, err)
		}
		return fmt.Errorf("admin server: listen %s: %w", addr, err)
	}
	return serve(ctx, ln, h, logger)
}

// serve runs the server on an open listener; it closes ln.
func serve(ctx context.Context, ln net.Listener, h http.Handler, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	addr := ln.Addr().String()
	if !isLoopback(ln.Addr()) {
		logger.Warn("admin server is reachable from the network: /metrics, /healthz and the admin API's reads are open to anyone who reaches the port; its writes need the admin token", "addr", addr)
	}
	logger.Info("admin server listening", "addr", addr)

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()

	select {
	case err := <-errc:
		// Serve only returns early on a listener failure.
		return fmt.Errorf("admin server on %s: %w", addr, err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	<-errc // http.ErrServerClosed once Shutdown has closed the listener
	if err != nil {
		_ = srv.Close()
		return fmt.Errorf("admin server on %s: shutdown: %w", addr, err)
	}
	logger.Info("admin server stopped", "addr", addr)
	return nil
}

// isLoopback reports whether a is a loopback TCP address.
func isLoopback(a net.Addr) bool {
	ta, ok := a.(*net.TCPAddr)
	return ok && ta.IP.IsLoopback()
}
