package auth

import (
	"crypto/x509"
	"errors"
	"net/http"
	"strings"
)

// Reasons of organisation tokens.
const (
	// ReasonCertificate: mutual TLS is in use and the client certificate's
	// OIN (subject serialNumber) is not the token's organisation, or an
	// organisation token came without the certificate that is required.
	ReasonCertificate Reason = "client certificate does not match the token's organisation (OIN)"
)

// FSCAuthorization is the header an FSC Inway forwards the caller's access
// token in. When a request carries it, it is the token, whatever
// Authorization says.
const FSCAuthorization = "Fsc-Authorization"

// ValidOIN reports whether s has the form of an OIN (Organisatie-
// identificatienummer): 20 digits.
func ValidOIN(s string) bool {
	if len(s) != 20 {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// CertificateOIN is the OIN in a PKIoverheid certificate: its subject
// serialNumber; ok is false when that is not an OIN.
func CertificateOIN(c *x509.Certificate) (string, bool) {
	if c == nil {
		return "", false
	}
	s := strings.TrimSpace(c.Subject.SerialNumber)
	return s, ValidOIN(s)
}

// organisationOf reads what makes a token an organisation's into id: the
// OIN, from the organisation claim or, in a client-credentials token that
// names no department, from client_id or sub (RFC 9068 puts the client
// there); the delegate of an act claim (RFC 8693 §4.1); and the purposes
// of its scope. Where several claims name an OIN they must name the same
// one: otherwise the audit log could hold an organisation the token did
// not mean.
func organisationOf(cl claims, id *Identity) error {
	_, hasDepartment := cl.values["department"]
	var oins []string
	if id.Organisation != "" {
		if !ValidOIN(id.Organisation) {
			return refuse(ReasonClaim, "organisation", errors.New("not an OIN (20 digits)"))
		}
		oins = append(oins, id.Organisation)
	}
	if v, ok := cl.values["client_id"]; ok {
		s, ok := v.(string)
		if !ok || !printable(s) {
			return refuse(ReasonClaim, "client_id", errors.New("not a string of printable characters"))
		}
		if !hasDepartment && ValidOIN(s) {
			oins = append(oins, s)
		}
	}
	if !hasDepartment && ValidOIN(cl.subject) {
		oins = append(oins, cl.subject)
	}
	for _, o := range oins[min(1, len(oins)):] {
		if o != oins[0] {
			return refuse(ReasonClaim, "client_id", errors.New("organisation, client_id and sub name different OINs"))
		}
	}
	if len(oins) > 0 {
		id.Organisation = oins[0]
	}

	if v, ok := cl.values["act"]; ok {
		act, ok := v.(map[string]any)
		if !ok {
			return refuse(ReasonClaim, "act", errors.New("not an object"))
		}
		sub, ok := act["sub"].(string)
		if !ok || strings.TrimSpace(sub) == "" || strings.TrimSpace(sub) != sub || !printable(sub) {
			return refuse(ReasonClaim, "act", errors.New("act.sub is not a non-blank string of printable characters"))
		}
		id.Delegate = sub
	}

	if id.Organisation == "" {
		return nil
	}
	if v, ok := cl.values["scope"]; ok {
		s, ok := v.(string)
		if !ok || !printable(s) {
			return refuse(ReasonClaim, "scope", errors.New("not a string of printable characters"))
		}
		id.Purposes = strings.Fields(s)
		if id.Purposes == nil {
			id.Purposes = []string{}
		}
	}
	return nil
}

// matchCertificate checks an organisation's token against the client
// certificate of the connection (mutual TLS): the certificate's OIN must
// be the token's. Employees' tokens are not bound to a certificate.
func (v *Verifier) matchCertificate(r *http.Request, id Identity) error {
	if id.Organisation == "" {
		return nil
	}
	var cert *x509.Certificate
	if r.TLS != nil && len(r.TLS.PeerCertificates) > 0 {
		cert = r.TLS.PeerCertificates[0]
	}
	if cert == nil {
		if v.requireCert {
			return refuse(ReasonCertificate, "", errors.New("no client certificate"))
		}
		return nil
	}
	if oin, ok := CertificateOIN(cert); !ok || oin != id.Organisation {
		return refuse(ReasonCertificate, "", errors.New("the certificate's subject serialNumber is not the token's OIN"))
	}
	return nil
}

// requestToken is the token of a request to the API: the Fsc-Authorization
// header's when there is one (as the FSC Inway forwards it: the token
// itself, or after "Bearer "; viaFSC is then true), else the
// Authorization bearer token.
func requestToken(r *http.Request) (token string, viaFSC bool, err error) {
	hs := r.Header.Values(FSCAuthorization)
	if len(hs) == 0 {
		tok, err := bearer(r)
		return tok, false, err
	}
	if len(hs) > 1 {
		return "", true, refuse(ReasonMalformed, "", errors.New("more than one Fsc-Authorization header"))
	}
	tok := strings.TrimSpace(hs[0])
	if scheme, rest, ok := strings.Cut(tok, " "); ok && strings.EqualFold(scheme, "Bearer") {
		tok = strings.TrimSpace(rest)
	}
	if tok == "" {
		return "", true, ErrNoToken
	}
	if len(tok) > maxAuthorization {
		return "", true, refuse(ReasonMalformed, "", errors.New("token larger than 16 KiB"))
	}
	return tok, true, nil
}
