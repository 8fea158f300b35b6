package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/klantbeeld/klantbeeld/gateway"
)

// metricsOff as metrics.listen serves the metrics nowhere.
const metricsOff = "off"

// operatorServer is the listener of metrics.listen: GET /metrics, and
// Go's profiler under /debug/pprof/ when metrics.pprof is set. It is kept
// off the API's listener so that an operator can bind it to an address
// only the monitoring reaches.
type operatorServer struct {
	ln     net.Listener
	server *http.Server
}

func startOperator(addr string, m *gateway.Metrics, withPprof bool, logger *slog.Logger) (*operatorServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen (%s): %w", EnvName("metrics.listen"), err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s := &operatorServer{ln: ln, server: &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		// A CPU profile or trace takes as long as it is asked to.
		WriteTimeout: 5 * time.Minute,
		ErrorLog:     slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}}
	go func() {
		if err := s.server.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("operator listener failed", "error", err.Error())
		}
	}()
	logger.Info("metrics listening", "addr", ln.Addr().String(), "pprof", withPprof)
	return s, nil
}

// Close stops the operator listener.
func (s *operatorServer) Close(ctx context.Context) error { return s.server.Shutdown(ctx) }

// MetricsAddr is the address of the operator listener (metrics.listen),
// nil when the metrics are served beside the API or not at all.
func (a *App) MetricsAddr() net.Addr {
	if a.operator == nil {
		return nil
	}
	return a.operator.ln.Addr()
}
