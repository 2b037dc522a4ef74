package salesforce

// SetAnswerLimits bounds the answers the driver reads (JSON, file bytes),
// for tests of the bounds without gigabyte bodies.
func SetAnswerLimits(s *Store, json, file int64) { s.c.maxAnswer, s.c.maxFile = json, file }
