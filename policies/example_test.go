package policies_test

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"

	"github.com/klantbeeld/klantbeeld/policies"
)

func ExampleReasonTypeURI() {
	e, _ := policies.NewEngine(context.Background(), policies.Embedded())
	d, _ := e.Decide(context.Background(), policies.Input{
		Actor:   policies.Actor{Sub: "u123", Department: "burgerzaken", Roles: []string{"medewerker"}},
		Action:  policies.ActionResidentView,
		Purpose: "bijstand", Context: &policies.Context{Type: "zaak", ID: "c-1"},
	})
	fmt.Println(d.Allow, d.Code(), policies.ReasonTypeURI(d.Code()))
	// Output: false purpose_not_granted https://klantbeeld.gemeente.example/problems/purpose_not_granted
}

func ExampleDiff() {
	active := policies.Embedded()
	proposed := policies.Embedded()
	proposed.Files = maps.Clone(proposed.Files)
	var data map[string]any
	_ = json.Unmarshal(proposed.Files[policies.DataFile], &data)
	brp := data["purposes"].(map[string]any)["klantcontact"].(map[string]any)["sources"].(map[string]any)["brp"].(map[string]any)
	brp["fields"] = append(brp["fields"].([]any), "geboorte")
	proposed.Files[policies.DataFile], _ = json.Marshal(data)

	d, _ := policies.Diff(context.Background(), active, proposed)
	for _, c := range d.Changes {
		fmt.Println(c.Case, c.Gained)
	}
	// Output:
	// kcc [medewerker] klantcontact resident-view, subject: none [brp field geboorte]
	// kcc [medewerker] klantcontact resident-view, subject: geheimhouding [brp field geboorte]
	// kcc [medewerker] klantcontact resident-view, subject: opschorting O [brp field geboorte]
}
