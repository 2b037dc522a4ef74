package dynamicstest_test

import (
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestConcurrentRequests(t *testing.T) {
	c := newClient(t, nil)
	contact := c.seedContact("ann@example.com")
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := c.do("PATCH", "incidents(emailcrm_key='same')", map[string]any{"title": "t", "customerid_contact@odata.bind": "/contacts(" + contact + ")"})
			assert.Equal(t, http.StatusNoContent, r.status)
			_ = c.s.Records("incidents")
		}()
	}
	wg.Wait()
	assert.Len(t, c.s.Records("incidents"), 1, "upserts by one key create one record")
	assert.Equal(t, 8, c.s.Calls())
}
