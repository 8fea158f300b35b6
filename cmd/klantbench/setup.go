package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/lestrrat-go/jwx/v2/jwa"
	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jwt"
	"gopkg.in/yaml.v3"

	"github.com/klantbeeld/klantbeeld/fixtures"
	"github.com/klantbeeld/klantbeeld/fixtures/sources"
	"github.com/klantbeeld/klantbeeld/policies"
)

// The caller of every view in the load: a Burgerzaken employee at the
// balie, in a contact session, asking for the reisdocumenten purpose
// about a resident every fake knows, with records in every source.
const (
	benchIssuer   = "https://idp.klantbench.example"
	benchAudience = "klantbeeld"
	benchBSN      = "999993653"
	benchPurpose  = "reisdocumenten"
)

var benchActor = policies.Actor{Sub: "bench", Department: "burgerzaken", Roles: []string{"medewerker"}}

// world is what every run shares: the fakes with their delay, the
// identity provider's key and a token, and the files the processes read.
type world struct {
	dir     string
	set     *sources.Set
	key     *rsa.PrivateKey
	token   string
	jwks    string // file
	sources string // file: sourceSet for the baseline
	sfKey   string // file
}

// startWorld starts the four fakes on loopback, each answering every
// request after delay.
func startWorld(dir string, delay time.Duration) (*world, error) {
	// Every view spends Salesforce API requests: far more than an org's day.
	set, err := sources.Start(sources.Options{SalesforceDailyLimit: 1 << 30})
	if err != nil {
		return nil, err
	}
	w := &world{dir: dir, set: set}
	if delay > 0 {
		for _, s := range set.Servers() {
			s.SetFault(fixtures.Fault{Delay: delay})
		}
	}
	if err := w.files(); err != nil {
		set.Close()
		return nil, err
	}
	return w, nil
}

func (w *world) Close() error { return w.set.Close() }

func (w *world) files() error {
	var err error
	if w.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return err
	}
	jk, err := jwk.FromRaw(w.key.PublicKey)
	if err != nil {
		return err
	}
	_ = jk.Set(jwk.KeyIDKey, "bench")
	_ = jk.Set(jwk.AlgorithmKey, jwa.RS256)
	set := jwk.NewSet()
	if err := set.AddKey(jk); err != nil {
		return err
	}
	raw, err := json.Marshal(set)
	if err != nil {
		return err
	}
	w.jwks = filepath.Join(w.dir, "jwks.json")
	if err := os.WriteFile(w.jwks, raw, 0o600); err != nil {
		return err
	}
	priv, err := jwk.FromRaw(w.key)
	if err != nil {
		return err
	}
	_ = priv.Set(jwk.KeyIDKey, "bench")
	now := time.Now()
	tok, err := jwt.NewBuilder().Issuer(benchIssuer).Audience([]string{benchAudience}).
		Subject(benchActor.Sub).IssuedAt(now).NotBefore(now).Expiration(now.Add(time.Hour)).
		Claim("department", benchActor.Department).Claim("roles", benchActor.Roles).Claim("name", "Bench").Build()
	if err != nil {
		return err
	}
	signed, err := jwt.Sign(tok, jwt.WithKey(jwa.RS256, priv))
	if err != nil {
		return err
	}
	w.token = string(signed)

	pemKey, err := w.set.Credentials.SalesforcePrivateKeyPEM()
	if err != nil {
		return err
	}
	w.sfKey = filepath.Join(w.dir, "salesforce.pem")
	if err := os.WriteFile(w.sfKey, pemKey, 0o600); err != nil {
		return err
	}
	c := w.set.Credentials
	ss := sourceSet{
		BRPURL: w.set.BRPURL(), BRPKey: c.BRPAPIKey,
		ZakenURL: w.set.ZakenURL(), CatalogiURL: w.set.CatalogiURL(), ZakenClientID: c.ZakenClientID, ZakenSecret: c.ZakenSecret,
		SalesforceURL: w.set.SalesforceURL(), SalesforceKey: c.SalesforceKey, SalesforceUser: c.SalesforceUser, SalesforceKeyFile: w.sfKey,
		KlantinteractiesURL: w.set.KlantinteractiesURL(), KlantinteractiesToken: c.KlantinteractiesKey,
		Actor: benchActor, Purpose: benchPurpose,
	}
	raw, err = json.Marshal(ss)
	if err != nil {
		return err
	}
	w.sources = filepath.Join(w.dir, "sources.json")
	return os.WriteFile(w.sources, raw, 0o600)
}

// gatewayConfig writes the configuration of `klantbeeld serve` for the
// fakes with its audit log at dsn (and, for PostgreSQL, in schema), the
// metrics and profiler on their own listener. It returns the file.
func (w *world) gatewayConfig(name, listen, operator, dsn, schema string) (string, error) {
	c := w.set.Credentials
	dir := filepath.Join(w.dir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	audit := map[string]any{
		"dsn":                dsn,
		"pseudonym_key_file": filepath.Join(dir, "pseudonym.key"),
		"signing_key_file":   filepath.Join(dir, "checkpoint.key"),
	}
	if schema != "" {
		audit["schema"] = schema
	}
	cfg := map[string]any{
		"listen":  listen,
		"log":     map[string]any{"level": "info", "format": "json"},
		"auth":    map[string]any{"issuer": benchIssuer, "audience": benchAudience, "jwks_file": w.jwks},
		"audit":   audit,
		"metrics": map[string]any{"listen": operator, "pprof": true},
		"sources": map[string]any{
			"brp":   map[string]any{"url": w.set.BRPURL(), "api_key": c.BRPAPIKey},
			"zaken": map[string]any{"url": w.set.ZakenURL(), "catalogi_url": w.set.CatalogiURL(), "client_id": c.ZakenClientID, "secret": c.ZakenSecret},
			"salesforce": map[string]any{
				"url": w.set.SalesforceURL(), "login_url": w.set.SalesforceURL(), "consumer_key": c.SalesforceKey,
				"username": c.SalesforceUser, "private_key_file": w.sfKey,
			},
			"klantinteracties": map[string]any{"url": w.set.KlantinteractiesURL(), "token": c.KlantinteractiesKey},
		},
	}
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		return "", err
	}
	file := filepath.Join(dir, "klantbeeld.yaml")
	return file, os.WriteFile(file, raw, 0o600)
}

// freeAddr is a loopback address with a port nothing listens on now.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// process is the gateway or the baseline, running on its own.
type process struct {
	name     string
	cmd      *exec.Cmd
	url      string // base URL of the API
	operator string // base URL of metrics and pprof; "" for the baseline
	stderr   *os.File
	exited   chan error
}

// start runs argv with its standard error into a log file and waits until
// ready answers 200.
func start(ctx context.Context, name, dir, addr, operator, ready string, argv ...string) (*process, error) {
	logFile, err := os.Create(filepath.Join(dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// The gateway's own environment would override its config.
	cmd.Env = cleanEnv()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p := &process{name: name, cmd: cmd, url: "http://" + addr, stderr: logFile, exited: exited}
	if operator != "" {
		p.operator = "http://" + operator
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("%s exited before it was ready (%v); its log: %s\n%s", name, err, logFile.Name(), tail(logFile.Name()))
		case <-ctx.Done():
			p.stop()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		resp, err := http.Get(p.url + ready)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || ready == "/" {
				return p, nil
			}
		}
		if time.Now().After(deadline) {
			p.stop()
			return nil, fmt.Errorf("%s not ready after a minute; its log: %s\n%s", name, logFile.Name(), tail(logFile.Name()))
		}
	}
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KLANTBEELD_") {
			env = append(env, kv)
		}
	}
	return env
}

// tail is the last lines of a log file.
func tail(path string) string {
	b, _ := os.ReadFile(path)
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], "\n")
}

// stop ends the process (SIGTERM, then SIGKILL after 20 s: the gateway
// lets requests in flight finish and writes its last checkpoint).
func (p *process) stop() {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	// How it ended does not matter: its figures are taken.
	select {
	case err := <-p.exited:
		_ = err
	case <-time.After(20 * time.Second):
		_ = p.cmd.Process.Kill()
		err := <-p.exited
		_ = err
	}
	p.stderr.Close()
}

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times (100 on Linux).
const clockTicks = 100

// cpu is the CPU time (user and system) the process has used.
func (p *process) cpu() (time.Duration, error) { return procCPU(p.cmd.Process.Pid) }

// procCPU is the CPU time (user and system) process pid has used.
func procCPU(pid int) (time.Duration, error) {
	own, _, _, err := procStat(pid)
	return own, err
}

// procStat reads /proc/pid/stat: the command name, the process's own CPU
// time (user+system) and that of its children it has waited for.
func procStat(pid int) (own, children time.Duration, name string, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, "", err
	}
	// The command name (field 2) is in parentheses and may hold spaces.
	j := bytes.IndexByte(b, '(')
	i := bytes.LastIndexByte(b, ')')
	if j < 0 || i < j {
		return 0, 0, "", errors.New("unreadable /proc stat")
	}
	f := strings.Fields(string(b[i+1:]))
	// After the name: state is field 3, utime 14, stime 15, cutime 16 and
	// cstime 17.
	if len(f) < 15 {
		return 0, 0, "", errors.New("short /proc stat")
	}
	var t [4]int64
	for k := range t {
		if t[k], err = strconv.ParseInt(f[11+k], 10, 64); err != nil {
			return 0, 0, "", err
		}
	}
	tick := func(n int64) time.Duration { return time.Duration(n) * time.Second / clockTicks }
	return tick(t[0] + t[1]), tick(t[2] + t[3]), string(b[j+1 : i]), nil
}

// databaseCPU is the CPU time the PostgreSQL server on this machine has
// used so far, all its processes together: a server process that ended
// counts in the children's time of the one that started it. ok is false
// when no PostgreSQL process runs here (the server is elsewhere, or none).
func databaseCPU() (time.Duration, bool) { return processesCPU("postgres") }

// processesCPU is the CPU time of every process named name (its command
// name, as /proc gives it), with that of the children they waited for, and
// whether there is one.
func processesCPU(name string) (total time.Duration, ok bool) {
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		own, children, comm, err := procStat(pid)
		if err != nil || comm != name {
			continue // gone meanwhile, or another program
		}
		total += own + children
		ok = true
	}
	return total, ok
}

// resetPeak starts a new peak resident set size (Linux clear_refs 5).
func (p *process) resetPeak() error {
	return os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", p.cmd.Process.Pid), []byte("5"), 0)
}

// peakRSS is the peak resident set size since the last resetPeak (VmHWM).
func (p *process) peakRSS() (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmHWM in /proc status")
}

// pgSchema makes a fresh schema name for one run's audit log; dropSchema
// removes it with everything in it afterwards.
func pgSchema() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return "klantbench_" + hex.EncodeToString(b)
}

func dropSchema(ctx context.Context, dsn, schema string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	return err
}

// pgReachable reports whether PostgreSQL at dsn answers.
func pgReachable(ctx context.Context, dsn string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	return conn.Close(ctx)
}
