package salesforcetest

import (
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

// FuzzParseSOQL checks that no query makes the parser or evaluator panic.
func FuzzParseSOQL(f *testing.F) {
	for _, q := range []string{
		`SELECT Id FROM Contact WHERE Email = '' OR Name LIKE '%'`,
		`SELECT Id, Name FROM Contact WHERE (Email LIKE 'a\%\_%' AND NOT LastName IN ('x','y')) ORDER BY Name DESC NULLS LAST LIMIT 5 OFFSET 1`,
		`SELECT COUNT() FROM Case WHERE CreatedDate > 2024-01-01T00:00:00Z AND IsClosed = false`,
		`SELECT Id FROM Case WHERE Id IN (SELECT ParentId FROM EmailMessage WHERE MessageIdentifier = '\u00e9\'')`,
		`SELECT Id FROM Contact WHERE Email = 'a\x'`,
	} {
		f.Add(q)
	}
	s := New(nil)
	defer s.Close()
	s.Insert("Contact", map[string]any{"LastName": "x", "Email": "a@b"})
	f.Fuzz(func(t *testing.T, q string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		if sq, err := s.parseSOQL(q); err == nil {
			s.runQuery(sq)
		}
	})
}

func TestConcurrentRequests(t *testing.T) {
	c := newClient(t, nil)
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _, _ := c.do("POST", v+"sobjects/Account", map[string]any{"Name": "a"}, nil)
			assert.Equal(t, 201, st)
			_ = c.s.Records("Account")
		}()
	}
	wg.Wait()
	assert.Len(t, c.s.Records("Account"), 20)
	assert.Equal(t, 20, c.s.Calls())
}
