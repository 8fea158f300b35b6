package upstream

// IsUUID reports whether s is a UUID in its canonical text form (8-4-4-4-12
// hexadecimal digits, either case), the form the ZGW APIs and Open Klant use
// in resource URLs. Other forms (braces, urn:uuid:, no hyphens) are refused:
// an id that goes into a path must be exactly one path segment of the
// expected shape.
func IsUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := range len(s) {
		c := s[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f', 'A' <= c && c <= 'F':
		default:
			return false
		}
	}
	return true
}
