package audittest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/klantbeeld/klantbeeld/audit"
)

// Memory is an in-memory audit.Store and audit.PolicyStore that keeps
// exactly what a database would (record bytes, tree hashes, checkpoints,
// policy versions and activations). Fail makes it refuse until
// healed; it is also a Tamperer, its "trigger" being a flag.
type Memory struct {
	mu          sync.Mutex
	records     []audit.Record
	hashes      []tlog.Hash
	checkpoints []audit.Checkpoint
	fail        error
	failNext    []error
	appends     int
	batches     []int
	delay       time.Duration
	noTrigger   bool
	// policyIDs are the stored policy versions' ids in the order stored,
	// policyFiles their files as EncodePolicyVersion stores them.
	policyIDs   []string
	policyFiles map[string][]byte
	activations []audit.PolicyActivation
	// sessions are the contact sessions by id, as stored.
	sessions map[string]audit.ContactSession
}

var (
	_ audit.Store               = (*Memory)(nil)
	_ audit.PolicyStore         = (*Memory)(nil)
	_ audit.ContactSessionStore = (*Memory)(nil)
	_ Tamperer                  = (*Memory)(nil)
)

// Fail makes every following call return err (wrapped in
// audit.ErrUnavailable); Fail(nil) heals.
func (m *Memory) Fail(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.fail = err
}

// FailNextAppend makes the next Append call fail with err (wrapped in
// audit.ErrUnavailable), and only that one; calls queue up.
func (m *Memory) FailNextAppend(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.failNext = append(m.failNext, err)
}

// Delay makes every Append take d, to let callers pile up.
func (m *Memory) Delay(d time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.delay = d
}

// Appends is how many Append calls (transactions) succeeded.
func (m *Memory) Appends() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.appends
}

// Batches is the number of events of every Append call, failed ones included, in order.
func (m *Memory) Batches() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.batches)
}

// Events returns every stored event, decoded.
func (m *Memory) Events() []audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]audit.Event, 0, len(m.records))
	for _, r := range m.records {
		ev, err := r.Event()
		if err != nil {
			panic(fmt.Sprintf("audittest: stored record %d: %v", r.Seq, err))
		}
		out = append(out, ev)
	}
	return out
}

func (m *Memory) failed() error {
	if m.fail != nil {
		return fmt.Errorf("%w: %w", audit.ErrUnavailable, m.fail)
	}
	return nil
}

// Append implements audit.Store.
func (m *Memory) Append(_ context.Context, events []audit.Event) ([]int64, error) {
	m.mu.Lock()
	d := m.delay
	m.mu.Unlock()
	time.Sleep(d)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.batches = append(m.batches, len(events))
	if err := m.failed(); err != nil {
		return nil, err
	}
	if len(m.failNext) > 0 {
		err := m.failNext[0]
		m.failNext = m.failNext[1:]
		return nil, fmt.Errorf("%w: %w", audit.ErrUnavailable, err)
	}
	last := int64(0)
	if n := len(m.records); n > 0 {
		last = m.records[n-1].Seq
	}
	b, err := audit.NewBatch(last, events, tlog.HashReaderFunc(m.readHashes))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", audit.ErrUnavailable, err)
	}
	if len(b.Hashes) > 0 && b.Hashes[0].Index != int64(len(m.hashes)) {
		return nil, fmt.Errorf("%w: hash %d after %d stored", audit.ErrUnavailable, b.Hashes[0].Index, len(m.hashes))
	}
	seqs := make([]int64, len(b.Records))
	for i, r := range b.Records {
		m.records = append(m.records, r)
		seqs[i] = r.Seq
	}
	for _, h := range b.Hashes {
		m.hashes = append(m.hashes, h.Hash)
	}
	m.appends++
	return seqs, nil
}

// find returns the position of seq in records, which a tamperer may have left with gaps.
func (m *Memory) find(seq int64) (int, bool) {
	return slices.BinarySearchFunc(m.records, seq, func(r audit.Record, seq int64) int { return int(r.Seq - seq) })
}

// Record implements audit.Store.
func (m *Memory) Record(_ context.Context, seq int64) (audit.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return audit.Record{}, err
	}
	i, ok := m.find(seq)
	if !ok {
		return audit.Record{}, fmt.Errorf("event %d: %w", seq, audit.ErrNotFound)
	}
	return clone(m.records[i]), nil
}

func clone(r audit.Record) audit.Record { return audit.Record{Seq: r.Seq, Data: slices.Clone(r.Data)} }

// Records implements audit.Store.
func (m *Memory) Records(_ context.Context, after int64, limit int) ([]audit.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return nil, err
	}
	i, _ := m.find(after + 1)
	out := []audit.Record{}
	for ; i < len(m.records) && len(out) < limit; i++ {
		out = append(out, clone(m.records[i]))
	}
	return out, nil
}

// Search implements audit.Store.
func (m *Memory) Search(_ context.Context, f audit.Filter) ([]audit.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return nil, err
	}
	out := []audit.Record{}
	for i := len(m.records) - 1; i >= 0 && len(out) < f.PageSize(); i-- {
		r := m.records[i]
		if f.Before > 0 && r.Seq >= f.Before {
			continue
		}
		ev, err := r.Event()
		if err != nil {
			return nil, fmt.Errorf("%w: event %d: %w", audit.ErrUnavailable, r.Seq, err)
		}
		if Matches(f, ev) {
			out = append(out, clone(r))
		}
	}
	return out, nil
}

// Matches reports whether ev passes every filter of f but the cursor and limit.
func Matches(f audit.Filter, ev audit.Event) bool {
	return (f.Subject == "" || ev.Subject == f.Subject) &&
		(f.Actor == "" || ev.Actor.Sub == f.Actor) &&
		(f.Department == "" || ev.Actor.Department == f.Department) &&
		(f.Purpose == "" || ev.Purpose == f.Purpose) &&
		(f.Decision == "" || ev.Decision == f.Decision) &&
		(f.Context == nil || ev.Context != nil && *ev.Context == *f.Context) &&
		(!f.Flagged || ev.Flagged) &&
		(f.From.IsZero() || !ev.Time.Before(f.From)) &&
		(f.To.IsZero() || ev.Time.Before(f.To))
}

func (m *Memory) readHashes(indexes []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= int64(len(m.hashes)) {
			return nil, fmt.Errorf("tree hash %d: %w", x, audit.ErrNotFound)
		}
		out[i] = m.hashes[x]
	}
	return out, nil
}

// ReadHashes implements audit.Store.
func (m *Memory) ReadHashes(_ context.Context, indexes []int64) ([]tlog.Hash, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return nil, err
	}
	return m.readHashes(indexes)
}

// AddCheckpoint implements audit.Store.
func (m *Memory) AddCheckpoint(_ context.Context, c audit.Checkpoint) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return 0, err
	}
	c.ID = int64(len(m.checkpoints) + 1)
	if n := len(m.checkpoints); n > 0 {
		c.ID = m.checkpoints[n-1].ID + 1
	}
	c.Note = slices.Clone(c.Note)
	m.checkpoints = append(m.checkpoints, c)
	return c.ID, nil
}

// Checkpoints implements audit.Store.
func (m *Memory) Checkpoints(_ context.Context, after int64, limit int) ([]audit.Checkpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return nil, err
	}
	out := []audit.Checkpoint{}
	for _, c := range m.checkpoints {
		if c.ID > after && len(out) < limit {
			out = append(out, c)
		}
	}
	return out, nil
}

// LatestCheckpoint implements audit.Store.
func (m *Memory) LatestCheckpoint(context.Context) (audit.Checkpoint, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return audit.Checkpoint{}, err
	}
	var best *audit.Checkpoint
	for i := range m.checkpoints {
		if c := &m.checkpoints[i]; best == nil || c.Size >= best.Size {
			best = c
		}
	}
	if best == nil {
		return audit.Checkpoint{}, fmt.Errorf("checkpoint: %w", audit.ErrNotFound)
	}
	return *best, nil
}

// Stats implements audit.Store.
func (m *Memory) Stats(context.Context) (audit.Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return audit.Stats{}, err
	}
	st := audit.Stats{Events: int64(len(m.records)), Hashes: int64(len(m.hashes))}
	if n := len(m.records); n > 0 {
		st.LastSeq = m.records[n-1].Seq
	}
	return st, nil
}

// CheckAppendOnly implements audit.Store: the "trigger" is gone after DropTrigger.
func (m *Memory) CheckAppendOnly(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return err
	}
	if m.noTrigger {
		return fmt.Errorf("%w: append-only trigger memory_no_update is missing", audit.ErrTampered)
	}
	return nil
}

// Ping implements audit.Store.
func (m *Memory) Ping(context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.failed()
}

// Close implements audit.Store: a closed Memory is unavailable.
func (m *Memory) Close() error {
	m.Fail(errors.New("closed"))
	return nil
}

// ChangeEvent implements Tamperer.
func (m *Memory) ChangeEvent(t testing.TB, seq int64, data []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records[m.mustFind(t, seq)].Data = slices.Clone(data)
}

// ReplaceEvent implements Tamperer.
func (m *Memory) ReplaceEvent(t testing.TB, seq int64, data []byte) { m.ChangeEvent(t, seq, data) }

// DeleteEvent implements Tamperer.
func (m *Memory) DeleteEvent(t testing.TB, seq int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i := m.mustFind(t, seq)
	m.records = slices.Delete(m.records, i, i+1)
}

// SwapEvents implements Tamperer.
func (m *Memory) SwapEvents(t testing.TB, a, b int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	i, j := m.mustFind(t, a), m.mustFind(t, b)
	m.records[i].Data, m.records[j].Data = m.records[j].Data, m.records[i].Data
}

// CutTail implements Tamperer.
func (m *Memory) CutTail(t testing.TB, seq int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records = m.records[:m.mustFind(t, seq)]
	m.hashes = m.hashes[:tlog.StoredHashIndex(0, seq-1)]
}

// RebuildWithout implements Tamperer.
func (m *Memory) RebuildWithout(t testing.TB, seq int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records = slices.Clone(m.records[:m.mustFind(t, seq)])
}

// RewriteTail implements Tamperer.
func (m *Memory) RewriteTail(t testing.TB, seq int64, records []audit.Record, hashes []audit.StoredHash) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.records = m.records[:m.mustFind(t, seq)]
	for _, r := range records {
		m.records = append(m.records, clone(r))
	}
	m.hashes = m.hashes[:tlog.StoredHashIndex(0, seq-1)]
	for _, h := range hashes {
		if h.Index != int64(len(m.hashes)) {
			t.Fatalf("rewrite: hash %d after %d", h.Index, len(m.hashes))
		}
		m.hashes = append(m.hashes, h.Hash)
	}
	m.checkpoints = slices.DeleteFunc(m.checkpoints, func(c audit.Checkpoint) bool { return c.Size > seq-1 })
}

// DropTrigger implements Tamperer.
func (m *Memory) DropTrigger(testing.TB) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.noTrigger = true
	return "memory_no_update"
}

func (m *Memory) mustFind(t testing.TB, seq int64) int {
	t.Helper()
	i, ok := m.find(seq)
	if !ok {
		t.Fatalf("audittest: no event %d to tamper with", seq)
	}
	return i
}

// PutPolicyVersion implements audit.PolicyStore.
func (m *Memory) PutPolicyVersion(_ context.Context, v audit.PolicyVersion) error {
	files, err := audit.EncodePolicyVersion(v)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return err
	}
	if stored, ok := m.policyFiles[v.ID]; ok {
		if !bytes.Equal(stored, files) {
			return fmt.Errorf("policy version %s is stored with other files: %w", v.ID, audit.ErrConflict)
		}
		return nil
	}
	if m.policyFiles == nil {
		m.policyFiles = map[string][]byte{}
	}
	m.policyFiles[v.ID] = files
	m.policyIDs = append(m.policyIDs, v.ID)
	return nil
}

// PolicyVersion implements audit.PolicyStore.
func (m *Memory) PolicyVersion(_ context.Context, id string) (audit.PolicyVersion, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return audit.PolicyVersion{}, err
	}
	stored, ok := m.policyFiles[id]
	if !ok {
		return audit.PolicyVersion{}, fmt.Errorf("policy version %s: %w", id, audit.ErrNotFound)
	}
	files, err := audit.DecodePolicyFiles(stored)
	if err != nil {
		return audit.PolicyVersion{}, err
	}
	return audit.PolicyVersion{ID: id, Files: files}, nil
}

// PolicyVersions implements audit.PolicyStore.
func (m *Memory) PolicyVersions(context.Context) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return nil, err
	}
	return append([]string{}, m.policyIDs...), nil
}

// AddPolicyActivation implements audit.PolicyStore.
func (m *Memory) AddPolicyActivation(_ context.Context, a audit.PolicyActivation) (int64, error) {
	if err := audit.CheckPolicyActivation(a); err != nil {
		return 0, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return 0, err
	}
	if _, ok := m.policyFiles[a.Version]; !ok {
		return 0, fmt.Errorf("activate policy version %s: %w", a.Version, audit.ErrNotFound)
	}
	active := ""
	if n := len(m.activations); n > 0 {
		active = m.activations[n-1].Version
	}
	if a.Previous != active {
		return 0, fmt.Errorf("activate policy version %s after %q: the active version is %q: %w", a.Version, a.Previous, active, audit.ErrConflict)
	}
	a.Seq = int64(len(m.activations) + 1)
	a.At = audit.PolicyTime(a.At)
	m.activations = append(m.activations, a)
	return a.Seq, nil
}

// PolicyActivations implements audit.PolicyStore.
func (m *Memory) PolicyActivations(_ context.Context, after int64, limit int) ([]audit.PolicyActivation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return nil, err
	}
	out := []audit.PolicyActivation{}
	for _, a := range m.activations {
		if a.Seq > after && len(out) < limit {
			out = append(out, a)
		}
	}
	return out, nil
}

// LatestPolicyActivation implements audit.PolicyStore.
func (m *Memory) LatestPolicyActivation(context.Context) (audit.PolicyActivation, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return audit.PolicyActivation{}, err
	}
	if len(m.activations) == 0 {
		return audit.PolicyActivation{}, fmt.Errorf("policy activation: %w", audit.ErrNotFound)
	}
	return m.activations[len(m.activations)-1], nil
}

// AddContactSession implements audit.ContactSessionStore.
func (m *Memory) AddContactSession(_ context.Context, s audit.ContactSession) error {
	if err := audit.CheckContactSession(s); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return err
	}
	if _, ok := m.sessions[s.ID]; ok {
		return fmt.Errorf("contact session %s: %w", s.ID, audit.ErrConflict)
	}
	if m.sessions == nil {
		m.sessions = map[string]audit.ContactSession{}
	}
	m.sessions[s.ID] = audit.ContactSession{
		ID: s.ID, Owner: s.Owner, Department: s.Department, Kanaal: s.Kanaal, OpenedAt: audit.SessionTime(s.OpenedAt),
	}
	return nil
}

// ContactSession implements audit.ContactSessionStore.
func (m *Memory) ContactSession(_ context.Context, id string) (audit.ContactSession, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return audit.ContactSession{}, err
	}
	return m.session(id)
}

// session is the stored session with its activity; m.mu is held.
func (m *Memory) session(id string) (audit.ContactSession, error) {
	s, ok := m.sessions[id]
	if !ok {
		return audit.ContactSession{}, fmt.Errorf("contact session %s: %w", id, audit.ErrNotFound)
	}
	s.LastActivity = s.OpenedAt
	key := audit.Context{Type: audit.ContextContactSession, ID: id}
	// The newest allowed look-up in it, as the SQL stores read it.
	for i := len(m.records) - 1; i >= 0; i-- {
		r := m.records[i]
		ev, err := r.Event()
		if err != nil {
			return audit.ContactSession{}, fmt.Errorf("%w: event %d: %w", audit.ErrUnavailable, r.Seq, err)
		}
		if ev.Context != nil && *ev.Context == key && ev.Decision == audit.DecisionAllow && ev.Subject != "" {
			if ev.Time.After(s.LastActivity) {
				s.LastActivity = ev.Time
			}
			break
		}
	}
	return s, nil
}

// CloseContactSession implements audit.ContactSessionStore.
func (m *Memory) CloseContactSession(_ context.Context, id, klantcontact string, at time.Time) (audit.ContactSession, error) {
	if err := audit.CheckClose(klantcontact, at); err != nil {
		return audit.ContactSession{}, err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.failed(); err != nil {
		return audit.ContactSession{}, err
	}
	s, err := m.session(id)
	if err != nil {
		return audit.ContactSession{}, err
	}
	switch {
	case s.ClosedAt.IsZero():
	case s.Klantcontact == klantcontact:
		return s, nil
	default:
		return audit.ContactSession{}, fmt.Errorf("contact session %s is closed with another klantcontact: %w", id, audit.ErrConflict)
	}
	stored := m.sessions[id]
	stored.ClosedAt, stored.Klantcontact = audit.SessionTime(at), klantcontact
	m.sessions[id] = stored
	s.ClosedAt, s.Klantcontact = stored.ClosedAt, stored.Klantcontact
	return s, nil
}
