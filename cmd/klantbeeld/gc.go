package main

import (
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"
)

// The garbage collector's defaults for serve and the demo. A view costs a
// few hundred kilobytes of short-lived garbage (the sources' JSON) and
// waits on the sources, not on memory: with Go's default (GOGC=100) the
// collector took about a tenth of the gateway's CPU at 250 views/s, on a
// machine whose two cores the gateway shares, and that CPU is latency. A
// larger heap target collects less often; the soft memory limit keeps the
// heap within the memory budget, the collector working harder as it nears
// it. GOGC or GOMEMLIMIT set in the environment win over these.
const (
	defaultGCPercent   = 300
	defaultMemoryLimit = 100 << 20 // bytes
)

// tuneGC sets the collector's defaults where the environment sets none
// (the runtime has read GOGC and GOMEMLIMIT itself) and logs what holds.
func tuneGC(environ []string, logger *slog.Logger) {
	gogc, limit := "", ""
	for _, kv := range environ {
		if v, ok := strings.CutPrefix(kv, "GOGC="); ok {
			gogc = v
		}
		if v, ok := strings.CutPrefix(kv, "GOMEMLIMIT="); ok {
			limit = v
		}
	}
	if gogc == "" {
		debug.SetGCPercent(defaultGCPercent)
		gogc = strconv.Itoa(defaultGCPercent)
	}
	if limit == "" {
		debug.SetMemoryLimit(defaultMemoryLimit)
		limit = strconv.Itoa(defaultMemoryLimit)
	}
	logger.Info("garbage collector", "GOGC", gogc, "GOMEMLIMIT", limit)
}
