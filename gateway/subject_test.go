package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/klantbeeld/klantbeeld/audit"
	"github.com/klantbeeld/klantbeeld/gateway"
	"github.com/klantbeeld/klantbeeld/policies"
)

// history is a subject-access answer.
type history struct {
	Rows []struct {
		Seq                int64     `json:"seq"`
		Requester          string    `json:"requester"`
		Department         string    `json:"department"`
		Organisation       string    `json:"organisation"`
		Purpose            string    `json:"purpose"`
		Description        string    `json:"description"`
		ProcessingActivity string    `json:"processingActivity"`
		Decision           string    `json:"decision"`
		LeafHash           tlog.Hash `json:"leafHash"`
		Proof              []tlog.Hash
		Sources            []struct {
			Source  string   `json:"source"`
			Fields  []string `json:"fields"`
			Records int      `json:"records"`
		} `json:"sources"`
	} `json:"rows"`
	Next       string `json:"next"`
	Checkpoint string `json:"checkpoint"`
}

func (h *auditHarness) subjectAccess(token, body string) (reply, history) {
	h.t.Helper()
	r := h.call(http.MethodPost, "/v1/subject-access", token, body)
	var got history
	if r.status == http.StatusOK {
		require.NoError(h.t, json.Unmarshal(r.body, &got))
	}
	return r, got
}

func (hs history) seqs() []int64 {
	out := []int64{}
	for _, r := range hs.Rows {
		out = append(out, r.Seq)
	}
	return out
}

// world: resident A is looked up by burgerzaken through the API, resident
// B by kcc; and there are refusals of A without a valid token, as an
// older gateway recorded them (with the subject), and one with a token.
func seedHistories(t *testing.T, h *auditHarness) {
	t.Helper()
	r := h.call(http.MethodPost, "/v1/resident-views", h.staff("burgerzaken"), `{"bsn":"`+bsnA+`","purpose":"reisdocumenten",`+zaakContext+`}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r = h.call(http.MethodPost, "/v1/resident-views", h.staff("kcc"), `{"bsn":"`+bsnB+`","purpose":"klantcontact",`+kccContext+`}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r = h.call(http.MethodPost, "/v1/resident-views", "", `{"bsn":"`+bsnA+`","purpose":"reisdocumenten",`+zaakContext+`}`)
	require.Equal(t, http.StatusUnauthorized, r.status, "%s", r.body)
	h.seed(audit.Event{Operation: "POST /v1/resident-views", Purpose: "reisdocumenten", Subject: h.pseudonym(bsnA), Decision: audit.DecisionDeny, Status: 401, Reasons: []string{"invalid token: token expired"}})
	r = h.call(http.MethodPost, "/v1/resident-views", h.staff("burgerzaken"), `{"bsn":"`+bsnA+`","purpose":"bijstand",`+zaakContext+`}`)
	require.Equal(t, http.StatusForbidden, r.status, "%s", r.body)
}

func TestResidentSeesOnlyTheirOwnHistory(t *testing.T) {
	h := newAuditHarness(t)
	seedHistories(t, h)
	h.checkpoint()

	r, a := h.subjectAccess(h.resident(bsnA), `{}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Len(t, a.Rows, 2, "the view and the refused bijstand look-up; not the refusals without a valid token: %s", r.body)
	refused, viewed := a.Rows[0], a.Rows[1]
	assert.Equal(t, "employee", viewed.Requester)
	assert.Equal(t, "burgerzaken", viewed.Department)
	assert.Equal(t, "reisdocumenten", viewed.Purpose)
	assert.Equal(t, "Aanvraag en uitgifte van reisdocumenten (paspoort, identiteitskaart)", viewed.Description)
	assert.Equal(t, "https://register.gemeente.example/verwerkingsactiviteiten/burza-reisdocumenten", viewed.ProcessingActivity)
	assert.Equal(t, audit.DecisionAllow, viewed.Decision)
	bySource := map[string][]string{}
	for _, s := range viewed.Sources {
		bySource[s.Source] = s.Fields
	}
	ev := h.events()[viewed.Seq-1]
	for _, s := range ev.Sources {
		if s.Called {
			assert.Equal(t, s.Fields, bySource[s.Source], "the data categories %s disclosed", s.Source)
		}
	}
	assert.Contains(t, bySource["brp"], "naam")
	assert.Contains(t, bySource, "zaken")
	assert.Equal(t, audit.DecisionDeny, refused.Decision)
	assert.Equal(t, "bijstand", refused.Purpose)

	text := wordsOf(t, r.body)
	for _, leak := range []string{"emp-burgerzaken", "Medewerker", "emp-kcc", "kcc", h.pseudonym(bsnB), "klantcontact", `"sub"`, `"name"`} {
		assert.NotContains(t, text, leak, "no employee identity and nothing about another resident")
	}
	for _, ev := range h.events() {
		if ev.Subject == h.pseudonym(bsnB) {
			assert.NotContains(t, a.seqs(), ev.Seq, "rows about B never appear for A")
		}
		if ev.Status == http.StatusUnauthorized {
			assert.NotContains(t, a.seqs(), ev.Seq, "refusals without a valid token are not in it")
		}
	}

	r, b := h.subjectAccess(h.resident(bsnB), `{}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Len(t, b.Rows, 1)
	assert.Equal(t, "kcc", b.Rows[0].Department)
	assert.Equal(t, "Beantwoorden van vragen van inwoners door het Klantcontactcentrum", b.Rows[0].Description)
	assert.NotContains(t, wordsOf(t, r.body), "burgerzaken")
}

// wordsOf is a subject-access answer without its hashes and checkpoint,
// whose base64 could hold any short word by chance.
func wordsOf(t *testing.T, body []byte) string {
	t.Helper()
	var a map[string]any
	require.NoError(t, json.Unmarshal(body, &a))
	delete(a, "checkpoint")
	for _, row := range a["rows"].([]any) {
		delete(row.(map[string]any), "leafHash")
		delete(row.(map[string]any), "proof")
	}
	b, err := json.Marshal(a)
	require.NoError(t, err)
	return string(b)
}

func TestSubjectAccessIsItselfInTheHistory(t *testing.T) {
	h := newAuditHarness(t)
	seedHistories(t, h)
	r, _ := h.subjectAccess(h.staff("kcc"), `{"bsn":"`+bsnA+`","purpose":"inzage"}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	r = h.call(http.MethodPost, "/v1/audit/_search", h.auditor(), `{"bsn":"`+bsnA+`"}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)

	ev := h.lastEvent()
	assert.Equal(t, h.pseudonym(bsnA), ev.Subject, "the auditor's search is recorded against A")

	r, a := h.subjectAccess(h.resident(bsnA), `{}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.GreaterOrEqual(t, len(a.Rows), 3)
	search, inzage := a.Rows[0], a.Rows[1]
	assert.Equal(t, "audit", search.Department)
	assert.Equal(t, "Controle van het toegangslogboek door een auditor", search.Description)
	assert.Equal(t, "kcc", inzage.Department)
	assert.Equal(t, "inzage", inzage.Purpose)
	assert.Equal(t, "Inzage van een inwoner in wie zijn gegevens heeft bekeken (AVG art. 15)", inzage.Description)
	assert.NotContains(t, string(r.body), "emp-kcc")
	assert.NotContains(t, string(r.body), "aud-1")

	// The resident's own call is in the next answer, as theirs.
	ev = h.lastEvent()
	assert.Equal(t, "POST /v1/subject-access", ev.Operation)
	assert.Equal(t, audit.Actor{Roles: []string{"resident"}}, ev.Actor, "a resident is no actor by name")
	assert.Equal(t, h.pseudonym(bsnA), ev.Subject)
	assert.Equal(t, "https://register.gemeente.example/verwerkingsactiviteiten/avg-inzage", ev.ProcessingActivity)
	_, again := h.subjectAccess(h.resident(bsnA), `{}`)
	require.NotEmpty(t, again.Rows)
	assert.Equal(t, ev.Seq, again.Rows[0].Seq)
	assert.Equal(t, "resident", again.Rows[0].Requester)
	assert.Empty(t, again.Rows[0].Department)
}

func TestSubjectAccessRowsVerifyAgainstTheCheckpoint(t *testing.T) {
	h := newAuditHarness(t)
	seedHistories(t, h)
	h.checkpoint()
	seedHistories(t, h) // newer than the checkpoint

	r, a := h.subjectAccess(h.resident(bsnA), `{}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	tree := openCheckpoint(t, h.verifierKey, a.Checkpoint)
	proved := 0
	for _, row := range a.Rows {
		rec, err := h.store.Record(context.Background(), row.Seq)
		require.NoError(t, err)
		assert.Equal(t, tlog.RecordHash(rec.Data), row.LeafHash, "leafHash is the hash of the stored record")
		if row.Seq > tree.N {
			assert.Nil(t, row.Proof, "row %d is not in the checkpoint yet", row.Seq)
			continue
		}
		require.NoError(t, tlog.CheckRecord(row.Proof, tree.N, tree.Hash, row.Seq-1, row.LeafHash), "row %d", row.Seq)
		proved++
	}
	assert.Equal(t, 2, proved)
	assert.Len(t, a.Rows, 4)
}

func TestEmployeeSubjectAccessNeedsPurposeInzage(t *testing.T) {
	h := newAuditHarness(t)
	seedHistories(t, h)
	tests := []struct {
		name   string
		token  string
		body   string
		status int
		rows   int
	}{
		{"an employee with purpose inzage sees the history of the BSN", h.staff("kcc"), `{"bsn":"` + bsnA + `","purpose":"inzage"}`, 200, 2},
		{"any department may", h.staff("belastingen"), `{"bsn":"` + bsnB + `","purpose":"inzage"}`, 200, 1},
		{"another purpose is refused", h.staff("burgerzaken"), `{"bsn":"` + bsnA + `","purpose":"reisdocumenten"}`, 403, 0},
		{"an unknown purpose is refused", h.staff("kcc"), `{"bsn":"` + bsnA + `","purpose":"nieuwsgierigheid"}`, 403, 0},
		{"an auditor is refused: no resident data", h.auditor(), `{"bsn":"` + bsnA + `","purpose":"inzage"}`, 403, 0},
		{"no purpose is 400", h.staff("kcc"), `{"bsn":"` + bsnA + `"}`, 400, 0},
		{"no BSN is 400", h.staff("kcc"), `{"purpose":"inzage"}`, 400, 0},
		{"a BSN failing the 11-proef is 400", h.staff("kcc"), `{"bsn":"123456789","purpose":"inzage"}`, 400, 0},
		{"an unknown field is 400", h.staff("kcc"), `{"bsn":"` + bsnA + `","purpose":"inzage","why":"curious"}`, 400, 0},
		{"no token is 401", "", `{"bsn":"` + bsnA + `","purpose":"inzage"}`, 401, 0},
		{"a token of neither provider is 401", newIDP(t, "https://elsewhere.example", "x").token(t, map[string]any{"sub": "x", "bsn": bsnA}), `{}`, 401, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(h.events())
			r, got := h.subjectAccess(tt.token, tt.body)
			require.Equal(t, tt.status, r.status, "%s", r.body)
			assert.Len(t, got.Rows, tt.rows)
			if tt.status != 200 {
				assert.NotContains(t, r.json, "rows")
			}
			require.Len(t, h.events(), before+1, "the call is an event")
			ev := h.lastEvent()
			assert.Equal(t, "POST /v1/subject-access", ev.Operation)
			assert.Equal(t, tt.status, ev.Status)
			if tt.status == http.StatusForbidden {
				assert.Equal(t, audit.DecisionDeny, ev.Decision)
				assert.NotEmpty(t, ev.Reasons, "the policy's reasons")
				assert.Equal(t, h.pseudonym(bsnA), ev.Subject, "a refused look-up is recorded against the resident")
			}
		})
	}
}

func TestResidentCannotAskForAnothersHistory(t *testing.T) {
	h := newAuditHarness(t)
	seedHistories(t, h)
	tests := []struct {
		name   string
		body   string
		status int
	}{
		{"their own BSN is fine", `{"bsn":"` + bsnA + `"}`, 200},
		{"with purpose inzage is fine", `{"purpose":"inzage"}`, 200},
		{"another BSN is refused", `{"bsn":"` + bsnB + `"}`, 403},
		{"another purpose is refused", `{"purpose":"reisdocumenten"}`, 403},
		{"another BSN in an invalid body is 400", `{"bsn":"` + bsnB + `","why":"curious"}`, 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, got := h.subjectAccess(h.resident(bsnA), tt.body)
			require.Equal(t, tt.status, r.status, "%s", r.body)
			assert.NotContains(t, string(r.body), h.pseudonym(bsnB))
			for _, row := range got.Rows {
				assert.NotEqual(t, "kcc", row.Department, "B's rows never appear")
			}
			ev := h.lastEvent()
			assert.Equal(t, h.pseudonym(bsnA), ev.Subject, "recorded against the resident who asked")
			assert.Equal(t, tt.status, ev.Status)
		})
	}
}

func TestSubjectAccessPagesNewestFirst(t *testing.T) {
	h := newAuditHarness(t)
	for range 5 {
		h.seed(viewEvent(h.pseudonym(bsnA), "kcc", "klantcontact", audit.DecisionAllow, 200))
	}
	// Refusals without a token between them are skipped, not counted.
	h.seed(audit.Event{Operation: "POST /v1/resident-views", Subject: h.pseudonym(bsnA), Decision: audit.DecisionDeny, Status: 401})
	h.seed(viewEvent(h.pseudonym(bsnA), "kcc", "klantcontact", audit.DecisionAllow, 200))
	var pages [][]int64
	body := `{"limit":2}`
	tok := h.resident(bsnA)
	for range 6 {
		r, got := h.subjectAccess(tok, body)
		require.Equal(t, http.StatusOK, r.status, "%s", r.body)
		pages = append(pages, got.seqs())
		if got.Next == "" {
			break
		}
		body = `{"limit":2,"cursor":"` + got.Next + `"}`
	}
	assert.Equal(t, [][]int64{{7, 5}, {4, 3}, {2, 1}}, pages)
}

// plainDecider is a policy without purpose descriptions.
type plainDecider struct{ engine *policies.Engine }

func (p plainDecider) Decide(ctx context.Context, in policies.Input) (policies.Decision, error) {
	return p.engine.Decide(ctx, in)
}

func TestRowsFallBackToTheOperationWhenThePolicyHasNoDescriptions(t *testing.T) {
	engine, err := policies.NewEngine(context.Background(), policies.Embedded())
	require.NoError(t, err)
	h := newAuditHarness(t, func(c *gateway.Config) { c.Policy = plainDecider{engine} })
	h.seed(viewEvent(h.pseudonym(bsnA), "kcc", "klantcontact", audit.DecisionAllow, 200))
	r, got := h.subjectAccess(h.resident(bsnA), `{}`)
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	require.Len(t, got.Rows, 1)
	assert.Equal(t, "klantcontact", got.Rows[0].Purpose)
	assert.Equal(t, "Raadplegen van uw gegevens", got.Rows[0].Description)
}
