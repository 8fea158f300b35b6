// Command klantbench is the load run of `make bench`: the four fake
// sources with a fixed delay per request, the real gateway (the klantbeeld
// binary, `serve` with a generated configuration) with its audit log on
// PostgreSQL and then SQLite, and a baseline proxy that makes the same
// source calls without token check, validation, policy, audit or access
// log; each driven open-loop (vegeta) at fixed rates. The gateway and the
// baseline run as processes of their own, so that their CPU time and peak
// resident memory are their own (read from /proc). It prints, and writes
// as BENCHMARKS.md, one report with the load table, the Go benchmarks
// given to it (go test -bench output) and the targets met or missed.
//
//	klantbench -klantbeeld BIN [-rates 100,250,500,1000] [-duration 20s] [-delay 20ms]
//	           [-stores postgres,sqlite] [-postgres URL] [-gobench FILE] [-markdown FILE] [-profile DIR]
//
// Every flag also reads KLANTBENCH_<FLAG> (KLANTBENCH_RATES=100,250 …);
// -postgres reads KLANTBEELD_TEST_POSTGRES_URL.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	collectAsTheGateway()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "baseline" {
		err = runBaseline(ctx, os.Args[2:])
	} else {
		err = run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	}
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "klantbench:", err)
		os.Exit(1)
	}
}

// The garbage collector's defaults of `klantbeeld serve` (cmd/klantbeeld,
// gc.go). The baseline collects as the gateway does, so that the ratios
// are the gateway's own work; the fakes and the load generator too, so
// that the machine the setups share is alike.
const (
	gatewayGCPercent   = 300
	gatewayMemoryLimit = 100 << 20
)

// collectAsTheGateway sets the gateway's collector defaults where the
// environment sets none.
func collectAsTheGateway() {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(gatewayGCPercent)
	}
	if _, ok := os.LookupEnv("GOMEMLIMIT"); !ok {
		debug.SetMemoryLimit(gatewayMemoryLimit)
	}
}

// options are the flags of a run.
type options struct {
	klantbeeld string
	rates      []int
	duration   time.Duration
	warmup     time.Duration
	delay      time.Duration
	stores     []string
	postgres   string
	gobench    string
	markdown   string
	profile    string
}

func envOr(name, def string) string {
	if v := os.Getenv("KLANTBENCH_" + strings.ToUpper(name)); v != "" {
		return v
	}
	return def
}

func parseOptions(args []string, stderr io.Writer) (options, error) {
	fs := flag.NewFlagSet("klantbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("klantbeeld", envOr("klantbeeld", ""), "the klantbeeld `binary` (make bench builds it)")
	rates := fs.String("rates", envOr("rates", "100,250,500,1000"), "offered `views/s`, comma-separated")
	duration := fs.String("duration", envOr("duration", "20s"), "`time` at each rate")
	warmup := fs.String("warmup", envOr("warmup", "3s"), "`time` of the slow warm-up before each setup's rates")
	delay := fs.String("delay", envOr("delay", "20ms"), "`delay` every fake source adds to every request")
	stores := fs.String("stores", envOr("stores", "postgres,sqlite"), "audit stores of the gateway runs, in order")
	pg := fs.String("postgres", os.Getenv("KLANTBEELD_TEST_POSTGRES_URL"), "PostgreSQL `URL` (a fresh schema per run, dropped after)")
	gobench := fs.String("gobench", envOr("gobench", ""), "`file` of go test -bench output to summarise")
	markdown := fs.String("markdown", envOr("markdown", ""), "write the report to this `file` too (BENCHMARKS.md)")
	profile := fs.String("profile", envOr("profile", ""), "`folder` for CPU and allocation profiles of the gateway at every rate, and a CPU profile of this process (the fakes and the load generator)")
	if err := fs.Parse(args); err != nil {
		return options{}, err
	}
	o := options{klantbeeld: *bin, postgres: *pg, gobench: *gobench, markdown: *markdown, profile: *profile}
	var errs []error
	for _, r := range strings.Split(*rates, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(r))
		if err != nil || n <= 0 {
			errs = append(errs, fmt.Errorf("-rates: %q is not a positive number", r))
			continue
		}
		o.rates = append(o.rates, n)
	}
	for name, d := range map[string]struct {
		s   string
		dst *time.Duration
	}{"duration": {*duration, &o.duration}, "warmup": {*warmup, &o.warmup}, "delay": {*delay, &o.delay}} {
		v, err := time.ParseDuration(d.s)
		if err != nil || v < 0 {
			errs = append(errs, fmt.Errorf("-%s: %q is not a duration like 20s", name, d.s))
		}
		*d.dst = v
	}
	for _, s := range strings.Split(*stores, ",") {
		switch s = strings.TrimSpace(s); s {
		case "postgres", "sqlite":
			o.stores = append(o.stores, s)
		case "":
		default:
			errs = append(errs, fmt.Errorf("-stores: %q is not postgres or sqlite", s))
		}
	}
	if o.klantbeeld == "" {
		errs = append(errs, errors.New("-klantbeeld: the gateway binary is needed (go build -o BIN ./cmd/klantbeeld)"))
	}
	if o.duration <= 0 {
		errs = append(errs, errors.New("-duration must be positive"))
	}
	return o, errors.Join(errs...)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	o, err := parseOptions(args, stderr)
	if err != nil {
		return err
	}
	if o.profile != "" {
		if err := os.MkdirAll(o.profile, 0o755); err != nil {
			return err
		}
		stop, err := profileSelf(filepath.Join(o.profile, "cpu-klantbench.pprof"))
		if err != nil {
			return err
		}
		defer stop()
	}
	rep := &report{opts: o, started: time.Now(), machine: readMachine()}
	if o.gobench != "" {
		if rep.gobench, err = parseGoBench(o.gobench); err != nil {
			return err
		}
	}
	dir, err := os.MkdirTemp("", "klantbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	w, err := startWorld(dir, o.delay)
	if err != nil {
		return err
	}
	defer w.Close()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "klantbench: fakes up, delay %s; rates %v for %s each\n", o.delay, o.rates, o.duration)

	setups := []string{"baseline"}
	for _, s := range o.stores {
		if s == "postgres" {
			if o.postgres == "" {
				rep.notes = append(rep.notes, "PostgreSQL: no URL (-postgres or KLANTBEELD_TEST_POSTGRES_URL): its run was left out.")
				continue
			}
			if err := pgReachable(ctx, o.postgres); err != nil {
				return fmt.Errorf("PostgreSQL at -postgres does not answer: %w", err)
			}
		}
		setups = append(setups, s)
	}
	for _, setup := range setups {
		if err := runSetup(ctx, rep, w, dir, self, setup, stderr); err != nil {
			return fmt.Errorf("%s: %w", setup, err)
		}
	}
	rep.finished = time.Now()
	rep.machine.loadAfter = loadAverage()
	text := rep.markdown()
	fmt.Fprint(stdout, text)
	if o.markdown != "" {
		if err := os.WriteFile(o.markdown, []byte(text), 0o644); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "klantbench: report written to %s\n", o.markdown)
	}
	return nil
}

// runSetup starts the baseline or the gateway on one store, warms it up
// and measures every rate.
func runSetup(ctx context.Context, rep *report, w *world, dir, self, setup string, stderr io.Writer) error {
	o := rep.opts
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	var p *process
	switch setup {
	case "baseline":
		p, err = start(ctx, setup, dir, addr, "", "/", self, "baseline", "-sources", w.sources, "-listen", addr)
	default:
		operator, err := freeAddr()
		if err != nil {
			return err
		}
		dsn, schema := "sqlite://"+filepath.ToSlash(filepath.Join(dir, setup, "audit.db")), ""
		if setup == "postgres" {
			dsn, schema = o.postgres, pgSchema()
			defer func() {
				if err := dropSchema(context.Background(), o.postgres, schema); err != nil {
					fmt.Fprintf(stderr, "klantbench: dropping schema %s: %v\n", schema, err)
				}
			}()
		}
		cfg, err := w.gatewayConfig(setup, addr, operator, dsn, schema)
		if err != nil {
			return err
		}
		p, err = start(ctx, setup, dir, addr, operator, "/readyz", o.klantbeeld, "serve", "-config", cfg)
		if err != nil {
			return err
		}
	}
	if err != nil {
		return err
	}
	defer p.stop()
	if o.warmup > 0 {
		if err := warm(ctx, p, w, o.warmup); err != nil {
			return err
		}
	}
	for _, rate := range o.rates {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		s, err := attack(ctx, p, w, setup, rate, o.duration, o.profile)
		if err != nil {
			return err
		}
		settle(p)
		fmt.Fprintf(stderr, "klantbench: %-8s %5d/s: %7.1f views/s  p50 %6.1f ms  p99 %7.1f ms  errors %.2f%%  CPU %.2f  RSS %d MB\n",
			setup, rate, s.ViewsPerSecond, ms(s.P50), ms(s.P99), 100*s.errorRate(), s.CPU, s.PeakRSS>>20)
		if s.FirstError != "" {
			fmt.Fprintf(stderr, "klantbench:          first error: %s\n", s.FirstError)
		}
		rep.steps = append(rep.steps, s)
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// profileSelf writes a CPU profile of this process, the fakes and the load
// generator, until stop is called: what the sources and the load cost the
// machine the gateway shares with them.
func profileSelf(file string) (stop func(), err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}
