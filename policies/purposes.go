package policies

import (
	"encoding/json"
	"fmt"
)

// PurposeInfo is what a bundle's data says about one purpose that people
// are shown: residents see it in their subject-access history.
type PurposeInfo struct {
	// Description names the processing in plain Dutch
	// (purposes.<p>.description).
	Description string
	// ProcessingActivity is the register id of the processing
	// (purposes.<p>.processing_activity).
	ProcessingActivity string
}

// Purposes returns the description and processing activity of every
// purpose in b's data.json.
func Purposes(b Bundle) (map[string]PurposeInfo, error) {
	var data struct {
		Purposes map[string]struct {
			Description        string `json:"description"`
			ProcessingActivity string `json:"processing_activity"`
		} `json:"purposes"`
	}
	if err := json.Unmarshal(b.Files[DataFile], &data); err != nil {
		return nil, fmt.Errorf("%w: %s: purposes: %v", ErrBundle, DataFile, err)
	}
	out := make(map[string]PurposeInfo, len(data.Purposes))
	for name, p := range data.Purposes {
		out[name] = PurposeInfo{Description: p.Description, ProcessingActivity: p.ProcessingActivity}
	}
	return out, nil
}

// Purposes returns Purposes of the active bundle. The map is the caller's.
// It reads the bundle's data on every call: it serves the rare
// subject-access request, not every decision.
func (e *Engine) Purposes() (map[string]PurposeInfo, error) {
	b, _ := e.Bundle()
	return Purposes(b)
}
