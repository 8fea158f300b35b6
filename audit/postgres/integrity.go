package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/klantbeeld/klantbeeld/audit"
)

// Trigger kinds as pg_trigger.tgtype encodes them.
const (
	triggerRow      = 1 << 0
	triggerBefore   = 1 << 1
	triggerInsert   = 1 << 2
	triggerDelete   = 1 << 3
	triggerUpdate   = 1 << 4
	triggerTruncate = 1 << 5
)

// appendOnlyTrigger is one trigger the migrations make.
type appendOnlyTrigger struct {
	table, name, function string
	kind                  int32
	// version is the migration that makes it.
	version int64
}

// appendOnlyTriggers are every trigger of the migrations, as they made them.
func appendOnlyTriggers() []appendOnlyTrigger {
	var out []appendOnlyTrigger
	for _, t := range []struct {
		table, next, check string
		version            int64
	}{
		{"audit_events", "audit_events_next_seq", "audit_events_check_next", 1},
		{"audit_tree_hashes", "audit_tree_hashes_next_idx", "audit_tree_hashes_check_next", 1},
		{"audit_checkpoints", "audit_checkpoints_next_id", "audit_checkpoints_check_next", 1},
		{"audit_policy_versions", "audit_policy_versions_next_seq", "audit_policy_versions_check_next", 2},
		{"audit_policy_activations", "audit_policy_activations_next_seq", "audit_policy_activations_check_next", 2},
	} {
		out = append(out,
			appendOnlyTrigger{t.table, t.table + "_no_update", "audit_refuse_change", triggerRow | triggerBefore | triggerUpdate, t.version},
			appendOnlyTrigger{t.table, t.table + "_no_delete", "audit_refuse_change", triggerRow | triggerBefore | triggerDelete, t.version},
			appendOnlyTrigger{t.table, t.table + "_no_truncate", "audit_refuse_change", triggerBefore | triggerTruncate, t.version},
			appendOnlyTrigger{t.table, t.next, t.check, triggerInsert, t.version},
		)
	}
	// The contact sessions' tables (00003) have no numbering to check; a
	// closing must name a stored session.
	for _, table := range []string{"audit_contact_sessions", "audit_contact_session_closures"} {
		out = append(out,
			appendOnlyTrigger{table, table + "_no_update", "audit_refuse_change", triggerRow | triggerBefore | triggerUpdate, 3},
			appendOnlyTrigger{table, table + "_no_delete", "audit_refuse_change", triggerRow | triggerBefore | triggerDelete, 3},
			appendOnlyTrigger{table, table + "_no_truncate", "audit_refuse_change", triggerBefore | triggerTruncate, 3},
		)
	}
	out = append(out, appendOnlyTrigger{"audit_contact_session_closures", "audit_contact_session_closures_of_session",
		"audit_contact_session_closures_check", triggerInsert, 3})
	return out
}

// searchExpression is how the migrations generate audit_events.search, as
// pg_get_expr shows it.
const searchExpression = "audit_search_fields(record)"

// CheckAppendOnly implements audit.Store: every trigger of the migrations
// must be on its table, fire when and what they made it fire (a function
// of the log's schema) and be enabled ALWAYS, so that
// session_replication_role cannot switch it off; every function of the
// migrations must have the body they gave it; and the search fields must
// still be generated from the record. A schema an older gateway left
// (OpenExisting), which a later migration has not reached yet, needs only
// what the migrations it had make, and the triggers of any table it has
// (with their functions). It never makes or mends anything.
func (s *Store) CheckAppendOnly(ctx context.Context) error {
	applied, tables, err := s.schemaVersion(ctx)
	if err != nil {
		return err
	}
	rows, err := s.q.Triggers(ctx)
	if err != nil {
		return unavailable("triggers", err)
	}
	funcs, err := s.q.Functions(ctx)
	if err != nil {
		return unavailable("functions", err)
	}
	search, err := s.q.SearchColumn(ctx)
	if err != nil {
		return unavailable("search column", err)
	}
	type key struct{ table, name string }
	found := make(map[key]int, len(rows))
	for i, r := range rows {
		found[key{r.TableName, r.TriggerName}] = i
	}
	var problems []string
	// needed are the functions the required triggers run.
	needed := map[string]bool{}
	for _, want := range appendOnlyTriggers() {
		if want.version > applied && !tables[want.table] {
			continue // a migration this schema has not had yet makes it
		}
		needed[want.function] = true
		i, ok := found[key{want.table, want.name}]
		if !ok {
			problems = append(problems, fmt.Sprintf("trigger %s on %s is missing", want.name, want.table))
			continue
		}
		got := rows[i]
		if got.Kind != want.kind || got.FunctionName != want.function {
			problems = append(problems, fmt.Sprintf("trigger %s on %s was changed (it runs %s, type %d; want %s, type %d)",
				want.name, want.table, got.FunctionName, got.Kind, want.function, want.kind))
		}
		if !got.FunctionHere {
			problems = append(problems, fmt.Sprintf("trigger %s on %s runs a function %s of another schema", want.name, want.table, got.FunctionName))
		}
		if got.Enabled != "A" {
			problems = append(problems, fmt.Sprintf("trigger %s on %s is %s, not enabled ALWAYS", want.name, want.table, enabledName(got.Enabled)))
		}
	}
	want, err := functionBodies()
	if err != nil {
		return err
	}
	have := make(map[string]string, len(funcs))
	for _, f := range funcs {
		have[f.Name] = f.Body
	}
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if want[name].version > applied && !needed[name] {
			continue
		}
		body, ok := have[name]
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("function %s is missing", name))
		case body != want[name].body:
			problems = append(problems, fmt.Sprintf("function %s was changed", name))
		}
	}
	switch {
	case len(search) == 0:
		problems = append(problems, "column search of audit_events is missing")
	case search[0].Generated != "s" || search[0].Expression != searchExpression:
		problems = append(problems, fmt.Sprintf("column search of audit_events is no longer generated from the record (%q)", search[0].Expression))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: schema %s: %s", audit.ErrTampered, s.schema, strings.Join(problems, "; "))
	}
	return nil
}

// enabledName says what a pg_trigger.tgenabled value means.
func enabledName(v string) string {
	switch v {
	case "D":
		return "disabled"
	case "O":
		return "enabled only outside replication (ENABLE)"
	case "R":
		return "enabled only in replication (ENABLE REPLICA)"
	}
	return fmt.Sprintf("in state %q", v)
}

// function is one function as the migrations make it.
type function struct {
	// body is pg_proc.prosrc (the text between the $$ quotes) as the last
	// migration that makes the function gives it.
	body string
	// version is the first migration that makes it.
	version int64
}

// functionBodies are the functions the migrations make, by name.
func functionBodies() (map[string]function, error) {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	slices.Sort(names) // goose versions are zero-padded: in order
	def := regexp.MustCompile(`(?s)CREATE (?:OR REPLACE )?FUNCTION (\w+)\(.*?\$\$(.*?)\$\$`)
	out := map[string]function{}
	for _, name := range names {
		version, err := strconv.ParseInt(strings.SplitN(path.Base(name), "_", 2)[0], 10, 64)
		if err != nil {
			return nil, fmt.Errorf("audit postgres: migration %s: no version: %w", name, err)
		}
		text, err := fs.ReadFile(migrations, name)
		if err != nil {
			return nil, err
		}
		for _, m := range def.FindAllSubmatch(text, -1) {
			f, ok := out[string(m[1])]
			if !ok {
				f.version = version
			}
			f.body = string(m[2])
			out[string(m[1])] = f
		}
	}
	if len(out) == 0 {
		return nil, errors.New("audit postgres: the migrations define no function")
	}
	return out, nil
}

// schemaVersion returns the last migration applied to the schema (0 when
// it has no migration table) and which of the log's tables it has.
func (s *Store) schemaVersion(ctx context.Context) (int64, map[string]bool, error) {
	names, err := s.q.Tables(ctx)
	if err != nil {
		return 0, nil, unavailable("tables", err)
	}
	tables := make(map[string]bool, len(names))
	for _, n := range names {
		tables[n] = true
	}
	if !tables[versionTable] {
		return 0, tables, nil
	}
	// goose's table is not part of the schema sqlc knows: written by hand.
	var v int64
	err = s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version_id), 0)::bigint FROM `+versionTable+` WHERE is_applied`).Scan(&v)
	if err != nil {
		return 0, nil, unavailable("schema version", err)
	}
	return v, tables, nil
}
