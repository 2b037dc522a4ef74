// Package mailcasetest provides fakes for tests of code built on mailcase,
// in the spirit of net/http/httptest: a slice-backed Source that records
// every acknowledgement, plugin fakes (Router, Filter, SenderMatcher,
// ThreadResolver) with error- and panic-injection fields, FaultDriver (a
// case store driver wrapper that fails, panics or blocks chosen calls and
// counts them), a fixed Clock, and GenerateCorpus, a generator of realistic
// support mail.
//
// All fakes are safe for concurrent use. Their injection fields are plain
// values: set them before the fake is used, or through the setters where
// they exist.
package mailcasetest
