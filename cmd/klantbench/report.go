package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The targets the report checks (on this 2-core machine, with the load
// generator and the fakes on it too).
const (
	targetRate     = 250  // views/s at which the latency targets hold
	targetP50      = 1.15 // × the sources' delay
	targetP99      = 1.5  // × the sources' delay
	targetThrough  = 0.9  // × the baseline's sustained views/s
	targetErrors   = 0.001
	targetRSSBytes = 150 << 20
)

type machine struct {
	cpu        string
	nproc      int
	goVersion  string
	kernel     string
	loadBefore string
	loadAfter  string
}

func readMachine() machine {
	m := machine{nproc: runtime.NumCPU(), goVersion: runtime.Version(), loadBefore: loadAverage()}
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
		f.Close()
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	return m
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}

// goBench is one line of go test -bench output.
type goBench struct {
	pkg, name string
	values    []benchValue // in the order printed: ns/op, B/op, allocs/op, custom units
}

type benchValue struct {
	v    float64
	unit string
}

// parseGoBench reads the benchmark lines of go test -bench output, with
// the package each came from ("pkg:" lines).
func parseGoBench(path string) ([]goBench, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []goBench
	pkg := ""
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(strings.TrimSpace(p), "github.com/klantbeeld/klantbeeld/")
			continue
		}
		fields := strings.Fields(line)
		if len(fields) < 4 || !strings.HasPrefix(fields[0], "Benchmark") {
			continue
		}
		if _, err := strconv.Atoi(fields[1]); err != nil {
			continue // not a result line (a log line that starts alike)
		}
		b := goBench{pkg: pkg, name: fields[0]}
		// The -N suffix is GOMAXPROCS.
		if i := strings.LastIndexByte(b.name, '-'); i > 0 {
			if _, err := strconv.Atoi(b.name[i+1:]); err == nil {
				b.name = b.name[:i]
			}
		}
		for i := 2; i+1 < len(fields); i += 2 {
			v, err := strconv.ParseFloat(fields[i], 64)
			if err != nil {
				break
			}
			b.values = append(b.values, benchValue{v, fields[i+1]})
		}
		out = append(out, b)
	}
	return out, sc.Err()
}

type report struct {
	opts              options
	started, finished time.Time
	machine           machine
	steps             []step
	gobench           []goBench
	notes             []string
}

func (r *report) find(setup string, rate int) (step, bool) {
	for _, s := range r.steps {
		if s.Setup == setup && s.Rate == rate {
			return s, true
		}
	}
	return step{}, false
}

// latencyBound is the p99 a setup must keep to count as keeping up: 1.5×
// the baseline's p50 at the lowest rate, the unloaded time of the same
// source calls (with one round trip per source that is the p99 target,
// 1.5× the delay; with dependent round trips it grows with them).
func (r *report) latencyBound() time.Duration {
	for _, rate := range r.opts.rates {
		if s, ok := r.find("baseline", rate); ok {
			return time.Duration(targetP99 * float64(s.P50))
		}
	}
	return time.Duration(targetP99 * float64(r.opts.delay))
}

// sustained is the highest rate at which setup kept up: nearly every view
// answered in full (errors below the target) at the offered rate (98%),
// with p99 within latencyBound.
func (r *report) sustained(setup string) (step, bool) {
	var best step
	found := false
	bound := r.latencyBound()
	for _, s := range r.steps {
		if s.Setup != setup {
			continue
		}
		if s.errorRate() < targetErrors && s.ViewsPerSecond >= 0.98*float64(s.Rate) && s.P99 <= bound && s.Rate > best.Rate {
			best, found = s, true
		}
	}
	return best, found
}

// ratio is d over the sources' delay.
func (r *report) ratio(d time.Duration) float64 {
	if r.opts.delay <= 0 {
		return 0
	}
	return float64(d) / float64(r.opts.delay)
}

func fmtMS(d time.Duration) string {
	v := ms(d)
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	}
	return fmt.Sprintf("%.2f ms", v)
}

// times is a/b as "1.23×", or "–" when there is nothing to compare with.
func times(a, b float64) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

func (r *report) markdown() string {
	var b strings.Builder
	o := r.opts
	m := r.machine
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("# Benchmarks\n\n")
	p("Written by `make bench` (`cmd/klantbench`) from the run of %s; do not edit the figures: run it again.\n\n", r.started.UTC().Format("2006-01-02 15:04 UTC"))
	p("## How to run\n\n")
	p("`make bench` runs the Go benchmarks (`go test -bench . -benchmem` of the packages that have them), then the load run, and writes this file. " +
		"PostgreSQL comes from `KLANTBEELD_TEST_POSTGRES_URL`, or from the local server when one answers on 127.0.0.1:5432; without it the PostgreSQL runs are left out.\n\n")
	p("A quicker run: `make bench BENCH_DURATION=3s BENCH_RATES=100,250` (also `BENCH_DELAY`, `BENCH_STORES=sqlite`, `BENCH_PROFILE=dir` for CPU and allocation profiles of the gateway at every rate and a CPU profile of the fakes and the load generator). " +
		"`go run ./cmd/klantbench -h` lists the flags.\n\n")
	p("## Machine\n\n")
	p("- CPU: %s, %d logical cores (`nproc`)\n", m.cpu, m.nproc)
	p("- Go: %s; Linux %s\n", m.goVersion, m.kernel)
	p("- load average before the run: %s; after: %s (the machine is shared: figures are noisy, compare the ratios within one run)\n", m.loadBefore, m.loadAfter)
	p("- run: %s, %s in all\n\n", r.started.UTC().Format(time.RFC3339), r.finished.Sub(r.started).Round(time.Second))

	p("## Load run\n\n")
	p("The four fake sources (BRP, Zaken with Catalogi, Salesforce, Klantinteracties) on loopback, each answering every request after **%s**. "+
		"Every view: a Burgerzaken employee's token (RS256) at the balie, in a contact session opened before each step, purpose `%s`, a resident %s. "+
		"Open-loop at a fixed rate (vegeta): each rate for %s after a %s warm-up, then a pause until the process and the fakes are idle again (at most 15 s); "+
		"a view counts as an error unless it is answered 200, within 5 s, with every source ok. Latency is the client's, from sending to the last byte.\n\n", o.delay, benchPurpose, "with records in all four sources", o.duration, o.warmup)
	p("- **gateway**: the `klantbeeld serve` binary with a generated configuration (metrics and pprof on their own listener, JSON access log to a file), audit log on PostgreSQL (a fresh schema) or SQLite (a fresh file), checked and durably committed (group commit) before each answer.\n")
	p("- **baseline**: a process of the bench tool making the same source calls (the same connectors and view fetchers, the decision made once at start) and answering with the composed view: no token check, request validation, policy evaluation, audit write or access log.\n")
	p("- CPU is the process's user+system time over the step's wall time (1.00 = one core of %d); peak RSS is the process's high-water mark during the step (`VmHWM`, reset before it). "+
		"The fakes and the load generator share the machine with it: their CPU is the next column; the last is that of the PostgreSQL server on this machine, all its processes, whichever setup ran (– when none runs here).\n\n", m.nproc)
	p("Figures in parentheses are the ratio to the baseline at the same rate; `/delay` is the latency over the sources' delay (the physical limit is 1.00×).\n\n")
	p("| rate | setup | views/s | p50 | p90 | p99 | max | p50/delay | p99/delay | errors | CPU | peak RSS | fakes+load CPU | PostgreSQL CPU |\n")
	p("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	rates := slices.Clone(o.rates)
	for _, rate := range rates {
		base, hasBase := r.find("baseline", rate)
		for _, setup := range append([]string{"baseline"}, o.stores...) {
			s, ok := r.find(setup, rate)
			if !ok {
				continue
			}
			rel := func(a, bv float64, txt string) string {
				if setup == "baseline" || !hasBase {
					return txt
				}
				return fmt.Sprintf("%s (%s)", txt, times(a, bv))
			}
			db := "–"
			if s.DatabaseCPU >= 0 {
				db = fmt.Sprintf("%.2f", s.DatabaseCPU)
			}
			p("| %d | %s | %s | %s | %s | %s | %s | %.2f× | %.2f× | %s | %s | %s | %.2f | %s |\n", rate, setup,
				rel(s.ViewsPerSecond, base.ViewsPerSecond, fmt.Sprintf("%.1f", s.ViewsPerSecond)),
				rel(ms(s.P50), ms(base.P50), fmtMS(s.P50)),
				rel(ms(s.P90), ms(base.P90), fmtMS(s.P90)),
				rel(ms(s.P99), ms(base.P99), fmtMS(s.P99)),
				rel(ms(s.Max), ms(base.Max), fmtMS(s.Max)),
				r.ratio(s.P50), r.ratio(s.P99),
				fmt.Sprintf("%.2f%% (%d of %d)", 100*s.errorRate(), s.Sent-s.OK, s.Sent),
				rel(s.CPU, base.CPU, fmt.Sprintf("%.2f", s.CPU)),
				rel(float64(s.PeakRSS), float64(base.PeakRSS), fmt.Sprintf("%d MB", s.PeakRSS>>20)), s.BenchCPU, db)
		}
	}
	p("\n")
	p("The slowest 1%% of each step, and the most of them sent within one %s: most of them in one window is a pause that held every view in flight at once (of the machine, which is shared, or of a process), not a tail of the views one by one.\n\n", burstWindow)
	p("| rate | setup | slowest 1%% (views) | of them sent within one %s |\n| ---: | --- | ---: | ---: |\n", burstWindow)
	for _, rate := range rates {
		for _, setup := range append([]string{"baseline"}, o.stores...) {
			if s, ok := r.find(setup, rate); ok && s.Slowest > 0 {
				p("| %d | %s | %d | %d (%.0f%%) |\n", rate, setup, s.Slowest, s.Bunched, 100*float64(s.Bunched)/float64(s.Slowest))
			}
		}
	}
	p("\n")
	var counted []step
	for _, rate := range rates {
		for _, setup := range o.stores {
			if s, ok := r.find(setup, rate); ok && s.Gateway.batches > 0 {
				counted = append(counted, s)
			}
		}
	}
	if len(counted) > 0 {
		p("What the gateway's own metrics (`GET /metrics`) counted in each step: the audit log's group commit, the policy decisions (two per view when the BRP reports facts about the resident, else one; cached), a view's time in the handler (from the request to the answer written, audit write included) and a source call's (retries included; the sources' delay is in it).\n\n")
		p("| rate | setup | audit transactions/s | events per transaction | commit (mean) | decisions/s | decision (mean) | view in the handler (mean) | source call (mean) |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n")
		for _, s := range counted {
			g := s.Gateway
			secs := r.opts.duration.Seconds()
			decision := "–"
			if g.decisions > 0 {
				decision = fmt.Sprintf("%.1f µs", 1e6*g.decisionsS/g.decisions)
			}
			p("| %d | %s | %.1f | %.2f | %.2f ms | %.1f | %s | %s | %s |\n", s.Rate, s.Setup, g.batches/secs, g.events/g.batches, 1e3*g.commitSeconds/g.batches, g.decisions/secs, decision,
				meanMS(g.viewsS, g.views), meanMS(g.callsS, g.calls))
		}
		p("\n")
		r.stagesTable(p, counted)
	}
	r.targets(p)
	for _, n := range r.notes {
		p("- %s\n", n)
	}
	if len(r.notes) > 0 {
		p("\n")
	}
	if len(r.gobench) > 0 {
		p("## Go benchmarks\n\n")
		p("`go test -run '^$' -bench . -benchmem -count=1` (one run each; custom units are the benchmark's own: events/s, events/txn, p50-µs …).\n\n")
		p("| package | benchmark | ns/op | B/op | allocs/op | other |\n| --- | --- | ---: | ---: | ---: | --- |\n")
		for _, g := range r.gobench {
			cols := map[string]string{}
			var other []string
			for _, v := range g.values {
				switch v.unit {
				case "ns/op", "B/op", "allocs/op":
					cols[v.unit] = strconv.FormatFloat(v.v, 'f', -1, 64)
				default:
					other = append(other, fmt.Sprintf("%s %s", strconv.FormatFloat(v.v, 'g', 6, 64), v.unit))
				}
			}
			p("| %s | %s | %s | %s | %s | %s |\n", g.pkg, strings.TrimPrefix(g.name, "Benchmark"), cols["ns/op"], cols["B/op"], cols["allocs/op"], strings.Join(other, ", "))
		}
		p("\n")
	}
	return b.String()
}

// targets writes the targets and whether this run met them.
func (r *report) targets(p func(string, ...any)) {
	p("### Targets\n\n")
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "**missed**"
	}
	main := "postgres"
	if !slices.Contains(r.opts.stores, main) {
		main = "sqlite"
	}
	if s, ok := r.find(main, targetRate); ok {
		p50, p99 := r.ratio(s.P50), r.ratio(s.P99)
		// What the same source calls take without the gateway tells the
		// sources' share of a miss from the gateway's.
		share := func(q func(step) time.Duration) string {
			b, ok := r.find("baseline", targetRate)
			if !ok || q(b) == 0 {
				return ""
			}
			return fmt.Sprintf("; the baseline, making the same source calls: %.2f×, the gateway on top of it: %.2f×", r.ratio(q(b)), float64(q(s))/float64(q(b)))
		}
		p("- p50 at %d views/s, audit on %s, at most %.2f× the delay: %.2f× (%s%s) — %s\n", targetRate, main, targetP50, p50, fmtMS(s.P50), share(func(s step) time.Duration { return s.P50 }), verdict(p50 <= targetP50))
		p("- p99 at %d views/s, audit on %s, at most %.2f× the delay: %.2f× (%s%s) — %s\n", targetRate, main, targetP99, p99, fmtMS(s.P99), share(func(s step) time.Duration { return s.P99 }), verdict(p99 <= targetP99))
	} else {
		p("- latency at %d views/s: not measured in this run (rates %v)\n", targetRate, r.opts.rates)
	}
	bs, bok := r.sustained("baseline")
	for _, setup := range r.opts.stores {
		gs, gok := r.sustained(setup)
		switch {
		case !bok:
			p("- throughput (%s): the baseline kept up at none of the rates, nothing to compare\n", setup)
		case !gok:
			p("- throughput (%s) at least %.1f× the baseline's: the gateway kept up (p99 ≤ %s) at none of the rates, the baseline up to %d views/s — %s\n", setup, targetThrough, fmtMS(r.latencyBound()), bs.Rate, verdict(false))
		default:
			ratio := gs.ViewsPerSecond / bs.ViewsPerSecond
			p("- throughput (%s) at least %.1f× the baseline's, both kept to p99 ≤ %s (1.5× the baseline's unloaded p50): highest rate kept up %d views/s (%.1f achieved) against the baseline's %d (%.1f): %.2f× — %s\n",
				setup, targetThrough, fmtMS(r.latencyBound()), gs.Rate, gs.ViewsPerSecond, bs.Rate, bs.ViewsPerSecond, ratio, verdict(ratio >= targetThrough))
		}
	}
	// Errors and memory are judged where the baseline kept up: beyond
	// that the machine itself is overloaded, and those figures are shown
	// apart.
	limit := 0
	if bok {
		limit = bs.Rate
	}
	type worst struct {
		err  float64
		at   string
		peak int64
	}
	var in, over worst
	for _, s := range r.steps {
		if s.Setup == "baseline" {
			continue
		}
		w := &in
		if s.Rate > limit {
			w = &over
		}
		if e := s.errorRate(); e > w.err || w.at == "" {
			w.err, w.at = e, fmt.Sprintf("%s at %d views/s", s.Setup, s.Rate)
		}
		w.peak = max(w.peak, s.PeakRSS)
	}
	if limit > 0 {
		p("- errors below %.1f%% at the rates the baseline kept up (up to %d views/s): worst %.2f%% (%s) — %s\n", 100*targetErrors, limit, 100*in.err, in.at, verdict(in.err < targetErrors))
		p("- peak RSS of the gateway at most %d MB at those rates: %d MB — %s\n", targetRSSBytes>>20, in.peak>>20, verdict(in.peak <= targetRSSBytes))
	} else {
		p("- errors and peak RSS: the baseline kept up at none of the rates, so none is judged\n")
	}
	if over.at != "" {
		p("- beyond that, where the baseline did not keep up either (overload of the machine): errors up to %.2f%% (%s), peak RSS up to %d MB\n", 100*over.err, over.at, over.peak>>20)
	}
	p("\n")
}

// stagesTable is where a view's time went in each step, from the
// gateway's stage histograms: the mean of each stage, and what is left of
// the mean time in the handler.
func (r *report) stagesTable(p func(string, ...any), steps []step) {
	var timed []step
	for _, s := range steps {
		if len(s.Gateway.stages) > 0 {
			timed = append(timed, s)
		}
	}
	if len(timed) == 0 {
		return
	}
	p("Where a view's time went in the gateway (means of its stage histograms): checking the context the purpose requires (the contact session: one database read, before any source is asked), the sources (asked in parallel: the slowest one decides), composing and filtering their answers, and waiting for the view's audit record (its group commit, after the batch already committing); the rest is the token check, request validation, the policy decisions and writing the answer.\n\n")
	p("Each stage is given as its mean and, in parentheses, its p99 as estimated from the histogram's buckets (linearly within a bucket, as `histogram_quantile` does; \">\" when it lies past the last bound); the rest is the mean only.\n\n")
	p("| rate | setup | in the handler | context check | sources | compose | audit record | rest |\n| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |\n")
	for _, s := range timed {
		g := s.Gateway
		cells := make([]string, 0, len(viewStages))
		var staged float64
		complete := g.views > 0
		for _, name := range viewStages {
			st, ok := g.stages[name]
			cells = append(cells, meanMS(st.seconds, st.n)+stageP99(st))
			if !ok || st.n == 0 {
				complete = false
				continue
			}
			staged += st.seconds / st.n
		}
		rest := "–"
		if complete {
			rest = fmt.Sprintf("%.2f ms", 1e3*(g.viewsS/g.views-staged))
		}
		p("| %d | %s | %s | %s | %s |\n", s.Rate, s.Setup, meanMS(g.viewsS, g.views), strings.Join(cells, " | "), rest)
	}
	p("\n")
}

// stageP99 is " (p99 …)" of a stage, or nothing without buckets.
func stageP99(st stageCount) string {
	v, above, ok := st.quantile(0.99)
	switch {
	case !ok:
		return ""
	case above:
		return fmt.Sprintf(" (p99 > %.2f ms)", 1e3*v)
	}
	return fmt.Sprintf(" (p99 %.2f ms)", 1e3*v)
}

// meanMS is sum/n seconds as milliseconds, or a dash when n is 0.
func meanMS(sum, n float64) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f ms", 1e3*sum/n)
}
