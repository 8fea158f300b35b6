package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/audit/postgres/pgdb"
)

// PutPolicyVersion implements audit.PolicyStore. It looks the id up and
// inserts under the schema's policy lock, so that processes storing one
// version at once store it once.
func (s *Store) PutPolicyVersion(ctx context.Context, v audit.PolicyVersion) error {
	files, err := audit.EncodePolicyVersion(v)
	if err != nil {
		return err
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return unavailable("begin", err)
	}
	defer rollback(ctx, tx) // after Commit: a no-op
	q := s.q.WithTx(tx)
	if err := q.LockPolicies(ctx, s.policyLock); err != nil {
		return unavailable("policy lock", err)
	}
	switch stored, err := q.GetPolicyVersion(ctx, v.ID); {
	case err == nil && stored.Files == string(files):
		return nil // stored before: nothing to write
	case err == nil:
		return fmt.Errorf("audit postgres: policy version %s is stored with other files: %w", v.ID, audit.ErrConflict)
	case !errors.Is(err, pgx.ErrNoRows):
		return unavailable("policy version", err)
	}
	if err := q.InsertPolicyVersion(ctx, pgdb.InsertPolicyVersionParams{ID: v.ID, Files: string(files)}); err != nil {
		return unavailable("insert policy version", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return unavailable("commit policy version", err)
	}
	return nil
}

// PolicyVersion implements audit.PolicyStore.
func (s *Store) PolicyVersion(ctx context.Context, id string) (audit.PolicyVersion, error) {
	row, err := s.q.GetPolicyVersion(ctx, id)
	if errors.Is(err, pgx.ErrNoRows) {
		return audit.PolicyVersion{}, fmt.Errorf("audit postgres: policy version %s: %w", id, audit.ErrNotFound)
	}
	if err != nil {
		return audit.PolicyVersion{}, unavailable("policy version", err)
	}
	files, err := audit.DecodePolicyFiles([]byte(row.Files))
	if err != nil {
		return audit.PolicyVersion{}, fmt.Errorf("audit postgres: policy version %s: %w", id, err)
	}
	return audit.PolicyVersion{ID: row.ID, Files: files}, nil
}

// PolicyVersions implements audit.PolicyStore.
func (s *Store) PolicyVersions(ctx context.Context) ([]string, error) {
	ids, err := s.q.ListPolicyVersions(ctx)
	if err != nil {
		return nil, unavailable("policy versions", err)
	}
	if ids == nil {
		ids = []string{}
	}
	return ids, nil
}

// AddPolicyActivation implements audit.PolicyStore. The checks read what
// is stored inside the transaction that inserts, under the schema's policy
// lock, so that of two processes activating after one version only the
// first succeeds; the insert trigger checks the same again.
func (s *Store) AddPolicyActivation(ctx context.Context, a audit.PolicyActivation) (int64, error) {
	if err := audit.CheckPolicyActivation(a); err != nil {
		return 0, err
	}
	tx, err := s.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return 0, unavailable("begin", err)
	}
	defer rollback(ctx, tx) // after Commit: a no-op
	q := s.q.WithTx(tx)
	if err := q.LockPolicies(ctx, s.policyLock); err != nil {
		return 0, unavailable("policy lock", err)
	}
	if _, err := q.GetPolicyVersion(ctx, a.Version); errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("audit postgres: activate policy version %s: %w", a.Version, audit.ErrNotFound)
	} else if err != nil {
		return 0, unavailable("policy version", err)
	}
	active := ""
	switch latest, err := q.LatestPolicyActivation(ctx); {
	case err == nil:
		active = latest.Version
	case !errors.Is(err, pgx.ErrNoRows):
		return 0, unavailable("latest policy activation", err)
	}
	if a.Previous != active {
		return 0, fmt.Errorf("audit postgres: activate policy version %s after %q: the active version is %q: %w", a.Version, a.Previous, active, audit.ErrConflict)
	}
	seq, err := q.InsertPolicyActivation(ctx, pgdb.InsertPolicyActivationParams{
		Version: a.Version, Previous: a.Previous, ActivatedBy: a.By,
		ActivatedAt: pgtype.Timestamptz{Time: audit.PolicyTime(a.At), Valid: true},
		Reason:      a.Reason, IsRollback: a.Rollback,
	})
	if err != nil {
		return 0, unavailable("insert policy activation", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, unavailable("commit policy activation", err)
	}
	return seq, nil
}

// PolicyActivations implements audit.PolicyStore.
func (s *Store) PolicyActivations(ctx context.Context, after int64, limit int) ([]audit.PolicyActivation, error) {
	rows, err := s.q.ListPolicyActivations(ctx, pgdb.ListPolicyActivationsParams{Seq: after, Limit: clampLimit(limit)})
	if err != nil {
		return nil, unavailable("policy activations", err)
	}
	out := make([]audit.PolicyActivation, len(rows))
	for i, r := range rows {
		out[i] = activation(r)
	}
	return out, nil
}

// LatestPolicyActivation implements audit.PolicyStore.
func (s *Store) LatestPolicyActivation(ctx context.Context) (audit.PolicyActivation, error) {
	r, err := s.q.LatestPolicyActivation(ctx)
	if errors.Is(err, pgx.ErrNoRows) {
		return audit.PolicyActivation{}, fmt.Errorf("audit postgres: no policy activation: %w", audit.ErrNotFound)
	}
	if err != nil {
		return audit.PolicyActivation{}, unavailable("latest policy activation", err)
	}
	return activation(r), nil
}

func activation(r pgdb.AuditPolicyActivation) audit.PolicyActivation {
	return audit.PolicyActivation{
		Seq: r.Seq, Version: r.Version, Previous: r.Previous, By: r.ActivatedBy,
		At: r.ActivatedAt.Time.UTC(), Reason: r.Reason, Rollback: r.IsRollback,
	}
}
