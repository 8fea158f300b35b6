// Package upstream is the HTTP plumbing every source connector shares: one
// client per source with a timeout inside the request deadline, retries of
// idempotent reads with jittered, deadline-aware backoff (go-retryablehttp), a
// circuit breaker (gobreaker), W3C traceparent propagation, a guard that only
// follows links under the source's configured base URLs, and errors that never
// carry a URL (source query strings hold BSNs) nor a BSN (paths and kept error
// bodies are masked with bsn.Redact). Beside the client it holds what the
// connectors share on top of it: the page iterator (Pages), the cached
// look-up (Cache) and the UUID check (IsUUID).
package upstream

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-retryablehttp"
	"github.com/sony/gobreaker/v2"

	"github.com/klantbeeld/klantbeeld/bsn"
)

// Errors returned by Client, wrapped with detail. Connectors wrap them again
// with their own name; callers classify with errors.Is.
var (
	// ErrUnavailable: the source could not be reached or answered 5xx or 429.
	ErrUnavailable = errors.New("source unavailable")
	// ErrTimeout: the source did not answer within its timeout.
	ErrTimeout = errors.New("source timed out")
	// ErrCircuitOpen: recent failures opened the circuit; the source was not called.
	ErrCircuitOpen = errors.New("source circuit open")
	// ErrBadResponse: the source answered with something that is not what its API promises.
	ErrBadResponse = errors.New("source sent a bad response")
	// ErrRejected: the source refused the request with a 4xx (credentials, validation).
	ErrRejected = errors.New("source rejected the request")
	// ErrForeignLink: a link in a response points outside the source's base URLs.
	ErrForeignLink = errors.New("link outside the source's base URLs")
)

// StatusError is a non-2xx answer. It matches ErrUnavailable for 5xx and 429
// and ErrRejected for 3xx and other 4xx.
type StatusError struct {
	Source string
	Method string
	Path   string // path only, BSNs masked: query strings may hold personal data
	Status int
	Header http.Header
	Body   []byte // at most MaxErrorBody bytes of the answer, BSNs masked
}

// MaxErrorBody is how much of an error answer StatusError keeps.
const MaxErrorBody = 4 << 10

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s: %s %s: status %d", e.Source, e.Method, e.Path, e.Status)
}

// Is makes errors.Is(err, ErrUnavailable) and errors.Is(err, ErrRejected) work.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrUnavailable:
		return e.Status >= 500 || e.Status == http.StatusTooManyRequests
	case ErrRejected:
		// A redirect is refused too: sources are configured with their real URL.
		return e.Status >= 300 && e.Status < 500 && e.Status != http.StatusTooManyRequests
	}
	return false
}

// Defaults filled in by New for zero Config fields.
const (
	DefaultTimeout          = 2 * time.Second
	DefaultRetries          = 2
	DefaultRetryWaitMin     = 50 * time.Millisecond
	DefaultRetryWaitMax     = 400 * time.Millisecond
	DefaultMaxResponseBytes = 8 << 20
	DefaultBreakerFailures  = 5
	DefaultBreakerCooldown  = 10 * time.Second
)

// Config configures one source's client. Zero values mean the defaults above.
type Config struct {
	// Name of the source ("brp", "zaken", ...), used in errors and logs.
	Name string
	// BaseURLs are the roots this source's links may point under; New
	// rejects a config without one.
	BaseURLs []string
	// Timeout bounds one whole operation (all pages, all retries).
	Timeout time.Duration
	// Retries of an idempotent request after the first attempt; negative: none.
	Retries      int
	RetryWaitMin time.Duration
	RetryWaitMax time.Duration
	// MaxResponseBytes larger answers are a bad response.
	MaxResponseBytes int64
	// BreakerFailures consecutive failed calls open the circuit for BreakerCooldown.
	BreakerFailures uint32
	BreakerCooldown time.Duration
	// Transport nil means a pooled transport of the client's own.
	Transport http.RoundTripper
	// Logger nil means no logging. Only failures are logged, never a query string.
	Logger *slog.Logger
	// Observer is told of every call and breaker change (metrics); nil: nobody.
	Observer Observer
}

// Observer watches a Client: Call after every Do, Circuit when the
// source's breaker changes state. It gets the source's name, never a URL
// or anything of a request's content. Its methods must be quick and safe
// for concurrent use: they run on the caller's goroutine.
type Observer interface {
	// Call reports one Do: its outcome (Outcome), the status of the last
	// answer (0 when none came) and how long it took, retries included.
	Call(source, outcome string, status int, d time.Duration)
	// Circuit reports the breaker's new state: open when it refuses calls
	// (open), not when it lets them through (closed, half-open).
	Circuit(source string, open bool)
}

// Outcome is the word for the result err of a Do: "ok", "rejected",
// "unavailable", "timeout", "circuit_open", "bad_response",
// "foreign_link", "canceled" or "error".
func Outcome(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, ErrCircuitOpen):
		return "circuit_open"
	case errors.Is(err, ErrBadResponse):
		return "bad_response"
	case errors.Is(err, ErrForeignLink):
		return "foreign_link"
	case errors.Is(err, ErrRejected):
		return "rejected"
	case errors.Is(err, ErrUnavailable):
		return "unavailable"
	case errors.Is(err, context.Canceled):
		return "canceled"
	default:
		return "error"
	}
}

// Client is safe for concurrent use.
type Client struct {
	cfg     Config
	bases   []*url.URL
	http    *http.Client
	breaker *gobreaker.CircuitBreaker[*Response]
	log     *slog.Logger
}

// Response is a 2xx answer read in full.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// New checks cfg and fills in its defaults. Its errors name the Config field
// at fault (Config.Name, Config.BaseURLs[i]).
func New(cfg Config) (*Client, error) {
	if cfg.Name == "" {
		return nil, errors.New("upstream: Config.Name is empty")
	}
	if len(cfg.BaseURLs) == 0 {
		return nil, fmt.Errorf("upstream %s: Config.BaseURLs is empty", cfg.Name)
	}
	c := &Client{cfg: cfg}
	for i, b := range cfg.BaseURLs {
		u, err := ParseBaseURL(b)
		if err != nil {
			return nil, fmt.Errorf("upstream %s: Config.BaseURLs[%d]: %w", cfg.Name, i, err)
		}
		c.bases = append(c.bases, u)
	}
	if c.cfg.Timeout <= 0 {
		c.cfg.Timeout = DefaultTimeout
	}
	if c.cfg.Retries == 0 {
		c.cfg.Retries = DefaultRetries
	} else if c.cfg.Retries < 0 {
		c.cfg.Retries = 0
	}
	if c.cfg.RetryWaitMin <= 0 {
		c.cfg.RetryWaitMin = DefaultRetryWaitMin
	}
	if c.cfg.RetryWaitMax < c.cfg.RetryWaitMin {
		c.cfg.RetryWaitMax = max(DefaultRetryWaitMax, c.cfg.RetryWaitMin)
	}
	if c.cfg.MaxResponseBytes <= 0 {
		c.cfg.MaxResponseBytes = DefaultMaxResponseBytes
	}
	if c.cfg.BreakerFailures == 0 {
		c.cfg.BreakerFailures = DefaultBreakerFailures
	}
	if c.cfg.BreakerCooldown <= 0 {
		c.cfg.BreakerCooldown = DefaultBreakerCooldown
	}
	transport := cfg.Transport
	if transport == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = 64
		transport = t
	}
	// Redirects are not followed: a source that redirects is misconfigured,
	// and a redirect could lead outside its base URLs.
	c.http = &http.Client{
		Transport: transport,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
	c.log = cfg.Logger
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	failures := c.cfg.BreakerFailures
	var onState func(string, gobreaker.State, gobreaker.State)
	if obs := cfg.Observer; obs != nil {
		onState = func(name string, _, to gobreaker.State) { obs.Circuit(name, to == gobreaker.StateOpen) }
	}
	c.breaker = gobreaker.NewCircuitBreaker[*Response](gobreaker.Settings{
		Name:          cfg.Name,
		Timeout:       c.cfg.BreakerCooldown,
		OnStateChange: onState,
		ReadyToTrip: func(counts gobreaker.Counts) bool {
			return counts.ConsecutiveFailures >= failures
		},
		// A source that cannot be reached or answers badly counts against
		// it; a refusal (4xx, redirect) or a caller who hung up does not.
		IsSuccessful: func(err error) bool {
			return err == nil || errors.Is(err, ErrRejected)
		},
		IsExcluded: func(err error) bool {
			return errors.Is(err, context.Canceled)
		},
	})
	return c, nil
}

// ParseBaseURL parses an absolute http(s) URL without query or fragment and
// drops a trailing slash.
// Errors never repeat the URL's credentials.
func ParseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil {
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return nil, fmt.Errorf("base URL: %w", err)
	}
	shown := u.Redacted()
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("base URL %q: want an absolute http or https URL", shown)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, fmt.Errorf("base URL %q: no query, fragment or credentials allowed", shown)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// Name is the source's name.
func (c *Client) Name() string { return c.cfg.Name }

// Bound limits ctx to the source's timeout; every connector operation runs
// inside one Bound so that pagination and retries share one budget.
func (c *Client) Bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, c.cfg.Timeout)
}

// Follow checks that link (absolute, or relative to the first base URL)
// points under one of the source's base URLs and returns it absolute. Its
// errors name the link without query and with BSNs masked.
func (c *Client) Follow(link string) (string, error) {
	u, err := c.follow(link)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}

// follow is Follow's check, returning the link parsed.
func (c *Client) follow(link string) (*url.URL, error) {
	u, err := url.Parse(link)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: unparsable link", c.cfg.Name, ErrForeignLink)
	}
	if !u.IsAbs() {
		if u.Host != "" || !strings.HasPrefix(u.Path, "/") {
			return nil, fmt.Errorf("%s: %w: relative link %q", c.cfg.Name, ErrForeignLink, bsn.Redact(u.Path))
		}
		u = c.bases[0].ResolveReference(u)
	}
	// An encoded slash could make one path look like another to the source.
	if u.User != nil || u.Fragment != "" || hasDotSegment(u.Path) || strings.Contains(strings.ToLower(u.RawPath), "%2f") {
		return nil, fmt.Errorf("%s: %w", c.cfg.Name, ErrForeignLink)
	}
	for _, b := range c.bases {
		if u.Scheme == b.Scheme && strings.EqualFold(u.Host, b.Host) &&
			(u.Path == b.Path || strings.HasPrefix(u.Path, b.Path+"/")) {
			return u, nil
		}
	}
	return nil, fmt.Errorf("%s: %w: %s://%s%s", c.cfg.Name, ErrForeignLink, u.Scheme, u.Host, bsn.Redact(u.Path))
}

func hasDotSegment(p string) bool {
	for seg := range strings.SplitSeq(p, "/") {
		if seg == ".." || seg == "." {
			return true
		}
	}
	return false
}

// Request is one HTTP request to the source.
type Request struct {
	Method string
	URL    string // absolute; checked with Follow
	Header http.Header
	Body   []byte
	// Idempotent requests are retried; only reads should set it.
	Idempotent bool
}

// Do sends req, retrying idempotent requests on connection errors, 5xx and
// 429 while the deadline allows another attempt. A 2xx answer is returned
// read in full; anything else is a *StatusError or one of the package's
// errors. When the deadline cuts a retry short the error names the last
// upstream status.
func (c *Client) Do(ctx context.Context, req Request) (resp *Response, err error) {
	if obs := c.cfg.Observer; obs != nil {
		start := time.Now()
		defer func() {
			status := 0
			if resp != nil {
				status = resp.Status
			} else if se, ok := errors.AsType[*StatusError](err); ok {
				status = se.Status
			}
			obs.Call(c.cfg.Name, Outcome(err), status, time.Since(start))
		}()
	}
	u, err := c.follow(req.URL)
	if err != nil {
		return nil, err
	}
	target := u.String()
	// The path goes into every error and log line of this request.
	path := bsn.Redact(u.Path)
	if _, ok := ctx.Deadline(); !ok {
		// Never wait forever, even for a caller that forgot Bound.
		var cancel context.CancelFunc
		ctx, cancel = c.Bound(ctx)
		defer cancel()
	}
	resp, err = c.breaker.Execute(func() (*Response, error) {
		return c.do(ctx, req, target, path)
	})
	if err != nil {
		if errors.Is(err, gobreaker.ErrOpenState) || errors.Is(err, gobreaker.ErrTooManyRequests) {
			err = fmt.Errorf("%s: %w", c.cfg.Name, ErrCircuitOpen)
		}
		if !errors.Is(err, ErrRejected) && !errors.Is(err, context.Canceled) {
			c.log.Warn("source request failed", "source", c.cfg.Name, "method", req.Method, "path", path, "error", err.Error())
		}
		return nil, err
	}
	return resp, nil
}

// attempts remembers, for one Do, what the last attempt saw.
type attempts struct {
	n          int
	lastStatus int
	lastErr    error
	nextWait   time.Duration
}

func (c *Client) do(ctx context.Context, req Request, target, path string) (*Response, error) {
	var body any
	if req.Body != nil {
		body = req.Body
	}
	rreq, err := retryablehttp.NewRequestWithContext(ctx, req.Method, target, body)
	if err != nil {
		return nil, fmt.Errorf("%s: %s %s: %w", c.cfg.Name, req.Method, path, err)
	}
	for k, vs := range req.Header {
		rreq.Header[k] = vs
	}
	if tp := traceparent(ctx); tp != "" {
		rreq.Header.Set("traceparent", tp)
	}
	retries := 0
	if req.Idempotent {
		retries = c.cfg.Retries
	}
	st := &attempts{}
	rc := &retryablehttp.Client{
		HTTPClient:   c.http,
		Logger:       nil, // no per-request noise; retryablehttp would log URLs with query strings
		RetryMax:     retries,
		RetryWaitMin: c.cfg.RetryWaitMin,
		RetryWaitMax: c.cfg.RetryWaitMax,
		CheckRetry:   c.checkRetry(st),
		Backoff: func(_, _ time.Duration, _ int, _ *http.Response) time.Duration {
			return st.nextWait
		},
		// Hand back the last answer or error instead of a generic "giving up".
		ErrorHandler: func(resp *http.Response, err error, _ int) (*http.Response, error) {
			return resp, err
		},
	}
	resp, err := rc.Do(rreq)
	if err == nil && (resp.StatusCode < 200 || resp.StatusCode > 299) && ctx.Err() != nil {
		// The caller gave up while a failed answer was on its way (and so
		// no retry was tried): theirs is the outcome, not the source's.
		resp.Body.Close()
		resp, err = nil, ctx.Err()
	}
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return nil, c.transportError(ctx, req.Method, path, err, st)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBody+1))
		return nil, &StatusError{Source: c.cfg.Name, Method: req.Method, Path: path, Status: resp.StatusCode, Header: resp.Header, Body: keptBody(b)}
	}
	b, err := readBody(resp, c.cfg.MaxResponseBytes)
	if err != nil {
		return nil, c.transportError(ctx, req.Method, path, err, st)
	}
	if int64(len(b)) > c.cfg.MaxResponseBytes {
		return nil, fmt.Errorf("%s: %s %s: %w: answer larger than %d bytes", c.cfg.Name, req.Method, path, ErrBadResponse, c.cfg.MaxResponseBytes)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b}, nil
}

// readBody reads resp's body, at most limit+1 bytes (one more says it was
// larger), into a slice of its own: of the announced Content-Length when
// there is one, else through a pooled buffer that is copied out once, so
// that an answer does not leave the garbage of a doubling buffer behind.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= limit {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
		return b, nil
	}
	buf := bodyBuffers.Get().(*bytes.Buffer)
	defer func() {
		// A buffer grown by a rare huge answer is left to the collector.
		if buf.Cap() <= maxPooledBody {
			buf.Reset()
			bodyBuffers.Put(buf)
		}
	}()
	buf.Reset()
	if _, err := buf.ReadFrom(io.LimitReader(resp.Body, limit+1)); err != nil {
		return nil, err
	}
	return bytes.Clone(buf.Bytes()), nil
}

// maxPooledBody is the largest buffer kept for the next answer.
const maxPooledBody = 1 << 20

var bodyBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// keptBody is what a StatusError keeps of an error answer b, read up to one
// byte past MaxErrorBody: at most MaxErrorBody bytes, every BSN masked.
// Sources echo the request in their errors, and whoever logs the body must
// not log a BSN. A cut through a BSN would keep its first digits, which with
// the 11-proef all but name it, so a digit run the cut goes through is
// dropped whole.
func keptBody(b []byte) []byte {
	if len(b) > MaxErrorBody {
		cutInRun := isDigit(b[MaxErrorBody])
		b = b[:MaxErrorBody]
		if cutInRun {
			b = bytes.TrimRight(b, "0123456789")
		}
	}
	return []byte(bsn.Redact(string(b)))
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// checkRetry retries connection errors, 5xx and 429, but only while the
// deadline leaves room for the wait and one more attempt.
func (c *Client) checkRetry(st *attempts) retryablehttp.CheckRetry {
	return func(ctx context.Context, resp *http.Response, err error) (bool, error) {
		st.n++
		if resp != nil {
			st.lastStatus, st.lastErr = resp.StatusCode, nil
		} else if err != nil {
			st.lastErr = err
		}
		if ctx.Err() != nil {
			return false, nil
		}
		retry := err != nil || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented
		if !retry {
			return false, nil
		}
		wait := c.backoff(st.n, resp)
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait+c.cfg.RetryWaitMin {
			return false, nil
		}
		st.nextWait = wait
		return true, nil
	}
}

// backoff is exponential from RetryWaitMin with full jitter, capped at
// RetryWaitMax, and honours a Retry-After in seconds up to the cap.
func (c *Client) backoff(attempt int, resp *http.Response) time.Duration {
	if resp != nil {
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			return min(time.Duration(s)*time.Second, c.cfg.RetryWaitMax)
		}
	}
	ceil := c.cfg.RetryWaitMin << min(attempt-1, 16)
	ceil = min(ceil, c.cfg.RetryWaitMax)
	half := ceil / 2
	return half + rand.N(half+1)
}

// transportError turns a client error into a package error without the URL.
func (c *Client) transportError(ctx context.Context, method, path string, err error, st *attempts) error {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	last := ""
	if st.lastStatus != 0 {
		last = fmt.Sprintf(" (last answer: status %d)", st.lastStatus)
	} else if st.lastErr != nil && !errors.Is(st.lastErr, context.DeadlineExceeded) && !errors.Is(st.lastErr, context.Canceled) {
		lastErr := st.lastErr
		if ue, ok := errors.AsType[*url.Error](lastErr); ok {
			lastErr = ue.Err
		}
		if lastErr.Error() != err.Error() {
			last = fmt.Sprintf(" (last error: %v)", lastErr)
		}
	}
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("%s: %s %s: %w", c.cfg.Name, method, path, context.Canceled)
	case ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%s: %s %s: %w after %d attempt(s)%s", c.cfg.Name, method, path, ErrTimeout, max(st.n, 1), last)
	default:
		return fmt.Errorf("%s: %s %s: %w: %v%s", c.cfg.Name, method, path, ErrUnavailable, err, last)
	}
}

// JSON sends req and decodes a 2xx answer into out.
func (c *Client) JSON(ctx context.Context, req Request, out any) (*Response, error) {
	resp, err := c.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := DecodeJSON(resp.Body, out); err != nil {
		return nil, fmt.Errorf("%s: %s: %w: %v", c.cfg.Name, req.Method, ErrBadResponse, err)
	}
	return resp, nil
}

type traceKey struct{}

// WithTrace makes requests sent under ctx carry a W3C traceparent with
// traceID (32 lower-case hex digits) and a new span id per request.
func WithTrace(ctx context.Context, traceID string) context.Context {
	return context.WithValue(ctx, traceKey{}, traceID)
}

func traceparent(ctx context.Context) string {
	id, _ := ctx.Value(traceKey{}).(string)
	if len(id) != 32 {
		return ""
	}
	var span [8]byte
	_, _ = crand.Read(span[:])
	return "00-" + id + "-" + hex.EncodeToString(span[:]) + "-01"
}
