package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/policies"
)

// initialActivator is who the first activation of a log is recorded as.
const initialActivator = "klantbeeld"

// activeBundle is the bundle a gateway starts with: the latest version
// activated in the audit database. A log without one gets the configured
// bundle (policies.dir, or the embedded one) stored and activated as its
// first version. Whatever is loaded passes policies.Check first.
func activeBundle(ctx context.Context, store audit.PolicyStore, configured policies.Bundle, logger *slog.Logger, now func() time.Time) (policies.Bundle, error) {
	for range 3 {
		latest, err := store.LatestPolicyActivation(ctx)
		switch {
		case err == nil:
			b, err := storedBundle(ctx, store, latest.Version)
			if err != nil {
				return policies.Bundle{}, err
			}
			if b.Version() != configured.Version() {
				logger.Info("policies: running the version activated in the audit database, not the configured bundle",
					"version", latest.Version, "activated_by", latest.By, "configured", configured.Version())
			}
			return b, nil
		case !errors.Is(err, audit.ErrNotFound):
			return policies.Bundle{}, fmt.Errorf("policies: reading the active version: %w", err)
		}
		v := policies.NewStoredVersion(configured)
		if err := store.PutPolicyVersion(ctx, audit.PolicyVersion{ID: v.ID, Files: v.Files}); err != nil {
			return policies.Bundle{}, fmt.Errorf("policies: storing the first version: %w", err)
		}
		_, err = store.AddPolicyActivation(ctx, audit.PolicyActivation{
			Version: v.ID, By: initialActivator, At: now(), Reason: "first start: the configured bundle is version one",
		})
		if errors.Is(err, audit.ErrConflict) {
			continue // another gateway activated one first: run that
		}
		if err != nil {
			return policies.Bundle{}, fmt.Errorf("policies: activating the first version: %w", err)
		}
		return configured, nil
	}
	return policies.Bundle{}, errors.New("policies: the active version kept changing while starting")
}

// storedBundle loads a stored version; its files must still hash to its id.
func storedBundle(ctx context.Context, store audit.PolicyStore, id string) (policies.Bundle, error) {
	v, err := store.PolicyVersion(ctx, id)
	if err != nil {
		return policies.Bundle{}, fmt.Errorf("policies: version %s: %w", id, err)
	}
	b, err := policies.StoredVersion{ID: v.ID, Files: v.Files}.Bundle()
	if err != nil {
		return policies.Bundle{}, fmt.Errorf("policies: the stored version %s was altered: %w", id, err)
	}
	return b, nil
}

// policyFollower makes this process run the version another process
// activated in the shared audit database, within one interval.
type policyFollower struct {
	store    audit.PolicyStore
	engine   *policies.Engine
	interval time.Duration
	logger   *slog.Logger
	stop     chan struct{}
	done     chan struct{}
}

func startPolicyFollower(store audit.PolicyStore, engine *policies.Engine, interval time.Duration, logger *slog.Logger) *policyFollower {
	f := &policyFollower{store: store, engine: engine, interval: interval, logger: logger, stop: make(chan struct{}), done: make(chan struct{})}
	go f.run()
	return f
}

func (f *policyFollower) run() {
	defer close(f.done)
	tick := time.NewTicker(f.interval)
	defer tick.Stop()
	for {
		select {
		case <-f.stop:
			return
		case <-tick.C:
			ctx, cancel := context.WithTimeout(context.Background(), f.interval+10*time.Second)
			if err := f.follow(ctx); err != nil {
				f.logger.Error("policies: following the active version", "error", err)
			}
			cancel()
		}
	}
}

// follow activates the latest stored activation when it is not the version
// this process runs. The version passes the same checks as any activation.
func (f *policyFollower) follow(ctx context.Context) error {
	latest, err := f.store.LatestPolicyActivation(ctx)
	if err != nil {
		return err
	}
	if latest.Version == f.engine.Version() {
		return nil
	}
	b, err := storedBundle(ctx, f.store, latest.Version)
	if err != nil {
		return err
	}
	if _, err := f.engine.Activate(ctx, b); err != nil {
		return fmt.Errorf("version %s activated elsewhere does not pass its checks here: %w", latest.Version, err)
	}
	f.logger.Info("policies: now running the version activated elsewhere", "version", latest.Version, "activated_by", latest.By, "seq", latest.Seq)
	return nil
}

// Close stops following.
func (f *policyFollower) Close() {
	select {
	case <-f.stop:
	default:
		close(f.stop)
	}
	<-f.done
}
