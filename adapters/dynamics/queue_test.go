package dynamics_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/dynamics"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// With ResolveOwners, a case routed to a queue is an item of that queue in
// Dataverse, the queue being looked up once; an update moves it and sets
// the owner; a missing queue is noted on a new case and refused on an
// update.
func TestResolveOwners_Queues(t *testing.T) {
	srv := newEnv(t, nil)
	tier1 := srv.Insert("queues", map[string]any{"name": "Tier 1"})
	tier2 := srv.Insert("queues", map[string]any{"name": "Tier 2"})
	agent := srv.Insert("systemusers", map[string]any{"fullname": "Ada Agent", "internalemailaddress": "ada@acme.example", "isdisabled": false})
	d := newDriver(t, srv, func(c *dynamics.Config) { c.ResolveOwners = true })
	ctx := t.Context()

	queueOf := func(id driver.CaseID) string {
		t.Helper()
		var q []string
		for _, item := range srv.Records("queueitems") {
			if item["_objectid_value"] == string(id) {
				q = append(q, item["_queueid_value"].(string))
			}
		}
		require.LessOrEqual(t, len(q), 1, "one queue item per incident")
		if len(q) == 0 {
			return ""
		}
		return q[0]
	}
	queueLookups := func() int {
		n := 0
		for _, c := range srv.Log() {
			if strings.HasSuffix(c.Path, "/queues") {
				n++
			}
		}
		return n
	}

	req := newCase(testMail(0, 0))
	req.Queue = "Tier 1"
	c, err := d.CreateCase(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, tier1, queueOf(c.ID))
	assert.Equal(t, "Tier 1", c.Queue)

	// A retried create returns the case and leaves it in its queue, once.
	again, err := d.CreateCase(ctx, req)
	require.NoError(t, err)
	assert.Equal(t, c.ID, again.ID)
	assert.Equal(t, tier1, queueOf(c.ID))

	req2 := newCase(testMail(0, 0))
	req2.Queue = "Tier 1"
	c2, err := d.CreateCase(ctx, req2)
	require.NoError(t, err)
	assert.Equal(t, tier1, queueOf(c2.ID))
	assert.Equal(t, 1, queueLookups(), "the queue is looked up once")

	// An update moves the case and sets its owner.
	q2, owner := "Tier 2", "Ada Agent"
	u, err := d.UpdateCase(ctx, c.ID, &driver.CaseUpdate{Queue: &q2, Owner: &owner})
	require.NoError(t, err)
	assert.Equal(t, "Tier 2", u.Queue)
	assert.Equal(t, tier2, queueOf(c.ID))
	rec, ok := srv.Record("incidents", string(c.ID))
	require.True(t, ok)
	assert.Equal(t, agent, rec["_ownerid_value"])

	// Missing names: an update is refused, naming it; nothing changes.
	nope := "Tier 9"
	_, err = d.UpdateCase(ctx, c.ID, &driver.CaseUpdate{Queue: &nope})
	require.Error(t, err)
	assert.Equal(t, driver.InvalidArgument, d.ErrorCode(err))
	assert.Contains(t, err.Error(), `"Tier 9"`)
	assert.Equal(t, tier2, queueOf(c.ID))
	ghost := "Nobody"
	_, err = d.UpdateCase(ctx, c.ID, &driver.CaseUpdate{Owner: &ghost})
	require.Error(t, err)
	assert.Equal(t, driver.InvalidArgument, d.ErrorCode(err))

	// A new case routed to a missing queue is filed, in no queue, with a
	// note saying so.
	req3 := newCase(testMail(0, 0))
	req3.Queue = "Tier 9"
	c3, err := d.CreateCase(ctx, req3)
	require.NoError(t, err)
	assert.Empty(t, queueOf(c3.ID))
	var noted bool
	for _, n := range srv.Records("annotations") {
		if n["_objectid_value"] == string(c3.ID) && strings.Contains(n["notetext"].(string), `queue "Tier 9", but no Dynamics queue has that name`) {
			noted = true
		}
	}
	assert.True(t, noted, "the missing queue is noted on the case")
}

// Without ResolveOwners the queue stays a name: no queue lookups, no queue
// items.
func TestResolveOwners_Off(t *testing.T) {
	srv := newEnv(t, nil)
	srv.Insert("queues", map[string]any{"name": "Tier 1"})
	d := newDriver(t, srv, nil)
	req := newCase(testMail(0, 0))
	req.Queue = "Tier 1"
	c, err := d.CreateCase(t.Context(), req)
	require.NoError(t, err)
	assert.Equal(t, "Tier 1", c.Queue)
	assert.Empty(t, srv.Records("queueitems"))
}

// A queue name that no record had is remembered as missing for
// OwnerMissTTL only: a queue created in Dataverse after the miss is used
// once the TTL has passed (and not before: the miss saves the lookup).
func TestResolveOwners_QueueCreatedAfterMiss(t *testing.T) {
	srv := newEnv(t, nil)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	d := newDriver(t, srv, func(c *dynamics.Config) {
		c.ResolveOwners = true
		c.OwnerMissTTL = time.Minute
		c.Now = clock
	})
	ctx := t.Context()
	queueLookups := func() int {
		n := 0
		for _, c := range srv.Log() {
			if strings.HasSuffix(c.Path, "/queues") {
				n++
			}
		}
		return n
	}
	queueOf := func(id driver.CaseID) string {
		for _, item := range srv.Records("queueitems") {
			if item["_objectid_value"] == string(id) {
				return item["_queueid_value"].(string)
			}
		}
		return ""
	}
	create := func() driver.CaseID {
		t.Helper()
		req := newCase(testMail(0, 0))
		req.Queue = "Returns"
		c, err := d.CreateCase(ctx, req)
		require.NoError(t, err)
		return c.ID
	}

	assert.Empty(t, queueOf(create()))
	require.Equal(t, 1, queueLookups())
	returns := srv.Insert("queues", map[string]any{"name": "Returns"})

	advance(30 * time.Second)
	assert.Empty(t, queueOf(create()), "within the TTL the miss is reused")
	assert.Equal(t, 1, queueLookups(), "no lookup within the TTL")

	advance(31 * time.Second)
	assert.Equal(t, returns, queueOf(create()), "after the TTL the new queue is found")
	assert.Equal(t, 2, queueLookups())
	create()
	assert.Equal(t, 2, queueLookups(), "a name found stays cached")
}

// A negative OwnerMissTTL remembers no miss: an update refused for a
// missing queue succeeds once the queue exists.
func TestResolveOwners_MissNotRemembered(t *testing.T) {
	srv := newEnv(t, nil)
	d := newDriver(t, srv, func(c *dynamics.Config) { c.ResolveOwners = true; c.OwnerMissTTL = -1 })
	ctx := t.Context()
	c, err := d.CreateCase(ctx, newCase(testMail(0, 0)))
	require.NoError(t, err)
	q := "Returns"
	_, err = d.UpdateCase(ctx, c.ID, &driver.CaseUpdate{Queue: &q})
	require.Error(t, err)
	assert.Equal(t, driver.InvalidArgument, d.ErrorCode(err))
	srv.Insert("queues", map[string]any{"name": "Returns"})
	u, err := d.UpdateCase(ctx, c.ID, &driver.CaseUpdate{Queue: &q})
	require.NoError(t, err)
	assert.Equal(t, "Returns", u.Queue)
}
