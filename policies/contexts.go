package policies

// Context types a look-up can name (Input.Context.Type). A purpose's
// requires_context lists those that justify it; the gateway verifies the
// one given before any data leaves.
const (
	// ContextContactSession: an open contact session of the caller.
	ContextContactSession = "contact-session"
	// ContextZaak: a zaak in which the resident is a betrokkene.
	ContextZaak = "zaak"
	// ContextInterneTaak: an interne taak assigned to the caller or their
	// department.
	ContextInterneTaak = "internetaak"
	// ContextKlantcontact: a klantcontact, recorded but not verified, so
	// no purpose may require it.
	ContextKlantcontact = "klantcontact"
	// ContextBreakGlass is what the gateway gives the policy when the
	// caller stated a reason instead of a context ("breakGlass"): the
	// purpose's break_glass says whether that may stand in for one. A
	// caller cannot name it as a context.
	ContextBreakGlass = "break-glass"
)

// VerifiableContexts are the context types the gateway verifies: the only
// ones a purpose may require (InvariantVerifiableContext).
var VerifiableContexts = []string{ContextContactSession, ContextZaak, ContextInterneTaak}
