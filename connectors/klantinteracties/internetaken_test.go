package klantinteracties_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/connectors/klantinteracties"
	"github.com/klantbeeld/klantbeeld/connectors/upstream"
)

func TestInterneTaakAssigned(t *testing.T) {
	srv, _ := startFake(t)
	c, _ := newClient(t, srv.URL())
	ctx := context.Background()
	const taak = "f0000000-0000-4000-8000-000000000104" // assigned to Sociale Zaken and rbakker
	tests := []struct {
		name string
		taak string
		who  klantinteracties.Assignee
		want bool
	}{
		{"TheEmployeeItIsAssignedTo", taak, klantinteracties.Assignee{Medewerker: "rbakker", Afdeling: "kcc"}, true},
		{"SomeoneOfTheDepartment", taak, klantinteracties.Assignee{Medewerker: "jdoe", Afdeling: "sociale-zaken"}, true},
		{"SomeoneElsewhere", taak, klantinteracties.Assignee{Medewerker: "mjansen", Afdeling: "burgerzaken"}, false},
		{"ADepartmentNamedAsAnEmployee", taak, klantinteracties.Assignee{Medewerker: "sociale-zaken"}, false},
		{"NobodyNamed", taak, klantinteracties.Assignee{}, false},
		{"ATaakThatDoesNotExist", "f0000000-0000-4000-8000-999999999999", klantinteracties.Assignee{Afdeling: "sociale-zaken"}, false},
		{"AnIdThatIsNoUUID", "TAAK-104", klantinteracties.Assignee{Afdeling: "sociale-zaken"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.InterneTaakAssigned(ctx, tt.taak, tt.who)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestInterneTaakAssignedFailsWhenTheSourceDoes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	t.Cleanup(srv.Close)
	c, _ := newClient(t, srv.URL)
	_, err := c.InterneTaakAssigned(context.Background(), "f0000000-0000-4000-8000-000000000104", klantinteracties.Assignee{Afdeling: "sociale-zaken"})
	require.ErrorIs(t, err, upstream.ErrUnavailable)
}
