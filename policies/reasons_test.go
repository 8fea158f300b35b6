package policies_test

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/klantbeeld/klantbeeld/policies"
)

func TestReasonTypeURIIsOnePerCodeAndNeverArbitraryText(t *testing.T) {
	tests := []struct{ code, want string }{
		{policies.CodePurposeNotGranted, "https://klantbeeld.gemeente.example/problems/purpose_not_granted"},
		{policies.CodeExistenceOnly, "https://klantbeeld.gemeente.example/problems/existence_only"},
		{"bundle_own_code", "https://klantbeeld.gemeente.example/problems/bundle_own_code"},
		{"../../evil?x=1", "https://klantbeeld.gemeente.example/problems/denied"},
		{"", "https://klantbeeld.gemeente.example/problems/denied"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, policies.ReasonTypeURI(tt.code), tt.code)
	}
	assert.Equal(t, "Purpose not granted", policies.ReasonTitle(policies.CodePurposeNotGranted))
	assert.Equal(t, "Not permitted", policies.ReasonTitle("bundle_own_code"))
}

func TestDecisionCodeIsTheMostBasicReason(t *testing.T) {
	tests := []struct {
		name  string
		codes []string
		want  string
	}{
		{"a role that never sees data first", []string{policies.CodeMissingClaim, policies.CodeNoDataRole, policies.CodePurposeNotGranted}, policies.CodeNoDataRole},
		{"a claim before the purpose", []string{policies.CodePurposeNotGranted, policies.CodeMissingClaim}, policies.CodeMissingClaim},
		{"a known code before a bundle's own", []string{"aaa_own", policies.CodeGeheimhoudingOrganisation}, policies.CodeGeheimhoudingOrganisation},
		{"a bundle's own", []string{"zzz_own"}, "zzz_own"},
		{"none", nil, policies.CodeDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, policies.Decision{Codes: tt.codes}.Code())
		})
	}
	assert.Empty(t, policies.Decision{Allow: true}.Code())
}

func TestExistenceCodeFallsBackToExistenceOnly(t *testing.T) {
	r := policies.SourceRule{ExistenceCodes: map[string]string{"SOCZA": "existence_only_socza", "KCC": "Not A Code"}}
	assert.Equal(t, "existence_only_socza", r.ExistenceCode("SOCZA"))
	assert.Equal(t, policies.CodeExistenceOnly, r.ExistenceCode("KCC"))
	assert.Equal(t, policies.CodeExistenceOnly, r.ExistenceCode("BURZA"))
}
