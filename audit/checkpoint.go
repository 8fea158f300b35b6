package audit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// DefaultOrigin names the log in checkpoints and is the name of a signing
// key made without one. A note key name may hold no spaces or '+'.
const DefaultOrigin = "klantbeeld/audit"

// FormatCheckpoint is the C2SP tlog-checkpoint body of tree: the origin
// line, the tree size and the base64 root hash, each ending in a newline.
func FormatCheckpoint(origin string, tree tlog.Tree) []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\n", origin, tree.N, base64.StdEncoding.EncodeToString(tree.Hash[:]))
}

// ParseCheckpoint parses a checkpoint body (extension lines after the hash
// are allowed and ignored).
func ParseCheckpoint(text []byte) (origin string, tree tlog.Tree, err error) {
	lines := strings.SplitN(string(text), "\n", 4)
	if len(lines) < 4 || lines[0] == "" {
		return "", tlog.Tree{}, errors.New("audit: checkpoint: want origin, size and hash lines")
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || lines[1] != strconv.FormatInt(n, 10) {
		return "", tlog.Tree{}, fmt.Errorf("audit: checkpoint: bad tree size %q", lines[1])
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return "", tlog.Tree{}, fmt.Errorf("audit: checkpoint: bad root hash %q", lines[2])
	}
	tree.N = n
	copy(tree.Hash[:], h)
	return lines[0], tree, nil
}

// SignCheckpoint makes the signed note of tree with signer; the origin is
// the signer's name.
func SignCheckpoint(signer note.Signer, tree tlog.Tree) ([]byte, error) {
	return note.Sign(&note.Note{Text: string(FormatCheckpoint(signer.Name(), tree))}, signer)
}

// OpenCheckpoint checks a signed checkpoint against verifier (a signature by
// it, and the origin being its name) and returns the tree it commits to.
// A missing or wrong signature is an error wrapping ErrTampered.
func OpenCheckpoint(signed []byte, verifier note.Verifier) (tlog.Tree, error) {
	n, err := note.Open(signed, note.VerifierList(verifier))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("%w: checkpoint signature: %w", ErrTampered, err)
	}
	origin, tree, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return tlog.Tree{}, fmt.Errorf("%w: %w", ErrTampered, err)
	}
	if origin != verifier.Name() {
		return tlog.Tree{}, fmt.Errorf("%w: checkpoint of log %q, want %q", ErrTampered, origin, verifier.Name())
	}
	return tree, nil
}

// LoadSigner reads a note signer key file ("PRIVATE+KEY+name+hash+key",
// Ed25519). With create set, a missing file is made with a new key named
// name (DefaultOrigin when empty), mode 0600 in a folder made 0700, as
// LoadKey does; an existing key keeps its own name.
func LoadSigner(path string, create bool, name string) (note.Signer, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) && create {
		data, err = createSignerKey(path, name)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: signing key: %w", err)
	}
	s, err := note.NewSigner(strings.TrimSpace(string(data)))
	if err != nil {
		return nil, fmt.Errorf("audit: signing key %s: %w", path, err)
	}
	return s, nil
}

func createSignerKey(path, name string) ([]byte, error) {
	if name == "" {
		name = DefaultOrigin
	}
	skey, _, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return nil, err
	}
	b, err := CreateKeyFile(path, []byte(skey+"\n"))
	if err != nil {
		return nil, err
	}
	return bytes.TrimSpace(b), nil
}

// VerifierKey returns the verifier key ("name+hash+key") of the signer key
// in the file at path: what `klantbeeld audit verifier-key` prints and
// witnesses and auditors configure.
func VerifierKey(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("audit: signing key: %w", err)
	}
	return verifierKeyOf(strings.TrimSpace(string(data)))
}

func verifierKeyOf(skey string) (string, error) {
	// PRIVATE+KEY+<name>+<hash>+<base64(alg || seed)>; note.NewSigner checks
	// the rest, so a key it accepts gives a verifier key that matches it.
	if _, err := note.NewSigner(skey); err != nil {
		return "", fmt.Errorf("audit: signing key: %w", err)
	}
	parts := strings.SplitN(skey, "+", 5) // the key itself is base64, which may hold a +
	key, err := base64.StdEncoding.DecodeString(parts[4])
	if err != nil || len(key) != 1+ed25519.SeedSize || key[0] != 1 {
		return "", errors.New("audit: signing key: not an Ed25519 note key")
	}
	pub := ed25519.NewKeyFromSeed(key[1:]).Public().(ed25519.PublicKey)
	return note.NewEd25519VerifierKey(parts[2], pub)
}

// NewVerifier parses a verifier key, as note.NewVerifier.
func NewVerifier(vkey string) (note.Verifier, error) {
	v, err := note.NewVerifier(strings.TrimSpace(vkey))
	if err != nil {
		return nil, fmt.Errorf("audit: verifier key: %w", err)
	}
	return v, nil
}

// SignerVerifier is the verifier of a signer made by LoadSigner or note.NewSigner.
func SignerVerifier(path string) (note.Verifier, error) {
	vkey, err := VerifierKey(path)
	if err != nil {
		return nil, err
	}
	return NewVerifier(vkey)
}

// CheckpointerOptions tune a Checkpointer. Zero values mean the defaults.
type CheckpointerOptions struct {
	// Interval between checkpoints; 0: one minute; negative: none but on
	// demand and at Close. A tick when the tree has not grown makes none.
	Interval time.Duration
	// WitnessFile, when set, receives every checkpoint made (written
	// atomically, 0600): a copy outside the database for CheckIntegrity's
	// IntegrityOptions.Witness, so that a rewrite inside the database
	// cannot also rewrite it. Empty: none.
	WitnessFile string
	// Logger gets the failures of checkpoints made on the timer; nil: discard.
	Logger *slog.Logger
	// Timeout bounds one checkpoint made on the timer or at Close; 0: 10 s.
	Timeout time.Duration
}

// Checkpointer signs and stores checkpoints of a store's tree: on a timer,
// on demand and at Close, each only when the tree has grown past the latest
// stored checkpoint. Before it signs it checks that the new tree is
// consistent with the latest checkpoint, so it never vouches for a tree
// whose stored hashes were rewritten.
type Checkpointer struct {
	store  Store
	signer note.Signer
	opts   CheckpointerOptions

	mu   sync.Mutex // one checkpoint at a time
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// NewCheckpointer starts the timer. Close stops it.
func NewCheckpointer(store Store, signer note.Signer, opts CheckpointerOptions) *Checkpointer {
	if opts.Interval == 0 {
		opts.Interval = time.Minute
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Checkpointer{store: store, signer: signer, opts: opts, stop: make(chan struct{}), done: make(chan struct{})}
	go c.run()
	return c
}

func (c *Checkpointer) run() {
	defer close(c.done)
	if c.opts.Interval < 0 {
		<-c.stop
		return
	}
	tick := time.NewTicker(c.opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-c.stop:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
			if _, err := c.Checkpoint(ctx); err != nil {
				c.opts.Logger.Error("audit checkpoint", "error", err)
			}
			cancel()
		}
	}
}

// Checkpoint makes a checkpoint of the whole stored tree now, unless the
// latest stored one already covers it, and returns the latest (new or
// not). For an empty log it returns ErrNotFound. A tree that is not
// consistent with the latest checkpoint is an error wrapping ErrTampered;
// store errors wrap ErrUnavailable.
func (c *Checkpointer) Checkpoint(ctx context.Context) (Checkpoint, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.store.Stats(ctx)
	if err != nil {
		return Checkpoint{}, err
	}
	latest, err := c.store.LatestCheckpoint(ctx)
	switch {
	case errors.Is(err, ErrNotFound):
		if st.LastSeq == 0 {
			return Checkpoint{}, fmt.Errorf("audit: no checkpoint of an empty log: %w", ErrNotFound)
		}
	case err != nil:
		return Checkpoint{}, err
	case latest.Size >= st.LastSeq:
		return latest, nil
	}
	root, err := TreeHash(ctx, c.store, st.LastSeq)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("%w: tree of %d: %w", ErrUnavailable, st.LastSeq, err)
	}
	if latest.Size > 0 {
		if err := c.checkExtends(ctx, latest, st.LastSeq, root); err != nil {
			return Checkpoint{}, err
		}
	}
	tree := tlog.Tree{N: st.LastSeq, Hash: root}
	signed, err := SignCheckpoint(c.signer, tree)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: sign checkpoint: %w", err)
	}
	cp := Checkpoint{Size: tree.N, Note: signed}
	if cp.ID, err = c.store.AddCheckpoint(ctx, cp); err != nil {
		return Checkpoint{}, err
	}
	if c.opts.WitnessFile != "" {
		if err := WriteWitness(c.opts.WitnessFile, signed); err != nil {
			return cp, fmt.Errorf("audit: checkpoint %d stored, witness file: %w", cp.ID, err)
		}
	}
	return cp, nil
}

func (c *Checkpointer) checkExtends(ctx context.Context, latest Checkpoint, size int64, root tlog.Hash) error {
	// The latest checkpoint was signed by us; if it no longer verifies with
	// our own key, or the tree grown since does not extend it, refuse.
	old, err := OpenCheckpoint(latest.Note, signerCheck{c.signer})
	if err != nil {
		return fmt.Errorf("checkpoint %d: %w", latest.ID, err)
	}
	proof, err := ConsistencyProof(ctx, c.store, old.N, size)
	if err != nil {
		return fmt.Errorf("%w: consistency with checkpoint %d: %w", ErrUnavailable, latest.ID, err)
	}
	if err := tlog.CheckTree(proof, size, root, old.N, old.Hash); err != nil {
		return &VerifyError{Seq: 1, Checkpoint: latest.ID, Reason: fmt.Sprintf("the stored tree of %d events does not extend checkpoint %d (%d events): %v", size, latest.ID, old.N, err)}
	}
	return nil
}

// signerCheck is the verifier of a signer, which does not expose its public
// key: it verifies a signature by signing again, as Ed25519 signatures are
// deterministic (the same key gives the same signature).
type signerCheck struct{ note.Signer }

func (s signerCheck) Verify(msg, sig []byte) bool {
	again, err := s.Sign(msg)
	return err == nil && bytes.Equal(again, sig)
}

// Close stops the timer and makes a last checkpoint if the tree grew.
func (c *Checkpointer) Close() error {
	var err error
	c.once.Do(func() {
		close(c.stop)
		<-c.done
		ctx, cancel := context.WithTimeout(context.Background(), c.opts.Timeout)
		defer cancel()
		if _, e := c.Checkpoint(ctx); e != nil && !errors.Is(e, ErrNotFound) {
			err = e
		}
	})
	return err
}

// WriteWitness stores a signed checkpoint at path atomically (0600, the
// folder made 0700), replacing the one before.
func WriteWitness(path string, signed []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), ".witness-*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(signed); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// ReadWitness reads a checkpoint kept by WriteWitness; a missing file is
// (nil, nil): there is nothing to compare with yet.
func ReadWitness(path string) ([]byte, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	return data, err
}
