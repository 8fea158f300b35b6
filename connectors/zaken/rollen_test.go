package zaken_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/klantbeeld/klantbeeld/bsn"
	"github.com/klantbeeld/klantbeeld/fixtures"
)

func TestIsBetrokkene(t *testing.T) {
	s := newSource(t, 2)
	c := s.client(t)
	ctx := context.Background()
	tests := []struct {
		name, zaak, bsn string
		want            bool
	}{
		{"TheResidentsOwnZaak", fixtures.ZaakUUID(101), fixtures.BSNSuzanne, true},
		{"AnotherResidentsZaak", fixtures.ZaakUUID(201), fixtures.BSNSuzanne, false},
		{"AZaakThatDoesNotExist", "a0000000-0000-4000-8000-999999999999", fixtures.BSNSuzanne, false},
		{"AnIdThatIsNoUUID", "ZAAK-2026-0000101", fixtures.BSNSuzanne, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.IsBetrokkene(ctx, tt.zaak, tt.bsn, employee)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	s.reset()
	_, err := c.IsBetrokkene(ctx, fixtures.ZaakUUID(101), "123456789", employee)
	require.ErrorIs(t, err, bsn.ErrInvalid)
	assert.Zero(t, s.total(), "no request for an invalid BSN")
}

// The connector checks the rol itself: a source that ignores the zaak
// filter, answering the resident's rol on another zaak, does not make the
// resident a betrokkene of this one.
func TestIsBetrokkeneChecksTheRolItself(t *testing.T) {
	s := newSource(t, 100)
	c := s.client(t)
	s.setRewrite(func(kind string, r *http.Request, body map[string]any) {
		body["count"] = 1
		body["results"] = []any{map[string]any{
			"zaak":                    s.srv.URL() + "/zaken/api/v1/zaken/" + fixtures.ZaakUUID(101),
			"betrokkeneIdentificatie": map[string]any{"inpBsn": fixtures.BSNSuzanne},
		}}
	})
	got, err := c.IsBetrokkene(context.Background(), fixtures.ZaakUUID(201), fixtures.BSNSuzanne, employee)
	require.NoError(t, err)
	assert.False(t, got, "the rol is the resident's, but of another zaak")
	got, err = c.IsBetrokkene(context.Background(), fixtures.ZaakUUID(101), fixtures.BSNSuzanne, employee)
	require.NoError(t, err)
	assert.True(t, got)
}
