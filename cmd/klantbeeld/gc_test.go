package main

import (
	"bytes"
	"log/slog"
	"math"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestServeSetsTheCollectorsDefaultsUnlessTheEnvironmentSetsThem(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(math.MaxInt64))
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))

	tuneGC([]string{"PATH=/usr/bin", "GOGCX=1"}, logger)
	assert.Equal(t, defaultGCPercent, debug.SetGCPercent(100))
	assert.Equal(t, int64(defaultMemoryLimit), debug.SetMemoryLimit(math.MaxInt64))
	assert.Contains(t, log.String(), "GOGC=300 GOMEMLIMIT=104857600")

	log.Reset()
	tuneGC([]string{"GOGC=50", "GOMEMLIMIT=1GiB"}, logger)
	assert.Equal(t, 100, debug.SetGCPercent(100), "GOGC of the environment (the runtime read it) is kept")
	assert.Equal(t, int64(math.MaxInt64), debug.SetMemoryLimit(math.MaxInt64), "and GOMEMLIMIT")
	assert.Contains(t, log.String(), "GOGC=50 GOMEMLIMIT=1GiB")
}
