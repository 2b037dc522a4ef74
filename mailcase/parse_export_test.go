package mailcase

// ParseWithEnmime parses raw through the enmime (tolerant) path even when
// the fast splitter found no anomaly, so tests can check both paths agree.
func ParseWithEnmime(raw []byte, opts *ParseOptions) (*Message, error) {
	return parseMessage(raw, opts.withDefaults(), true)
}

// SafeFilename exposes safeFilename to the tests.
func SafeFilename(name string) string { return safeFilename(name) }
