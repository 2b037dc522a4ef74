package salesforce_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/adapters/salesforce"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// With ResolveOwners and AutoAssign FALSE, a routed case is owned by its
// queue (a Group of Type Queue, looked up once); a missing queue is noted
// on the case; updates never run the assignment rules and refuse missing
// names.
func TestSalesforcetestQueues(t *testing.T) {
	s := newSFOrg(t)
	billing := s.Insert("Group", map[string]any{"Name": "Billing", "Type": "Queue"})
	s.Insert("Group", map[string]any{"Name": "Sales", "Type": "Regular"}) // not a queue
	agent := s.Insert("User", map[string]any{"Username": "ann@acme.example", "LastName": "Agent", "FirstName": "Ann", "IsActive": true})
	d := newDriver(t, sfOrg{s}, func(c *salesforce.Config) { c.ResolveOwners = true })
	ctx := t.Context()
	queries := func() int {
		n := 0
		for _, c := range s.Log() {
			if strings.Contains(c.RawQuery, "Group") {
				n++
			}
		}
		return n
	}

	req := newCaseReq(testMail(0, 0))
	req.Queue = "Billing"
	c, err := d.CreateCase(ctx, req)
	require.NoError(t, err)
	rec, ok := s.Record("Case", string(c.ID))
	require.True(t, ok)
	assert.Equal(t, billing, rec["OwnerId"])
	assert.Equal(t, "FALSE", rec["_AutoAssign"])
	req2 := newCaseReq(testMail(0, 0))
	req2.Queue = "Billing"
	c2, err := d.CreateCase(ctx, req2)
	require.NoError(t, err)
	rec2, _ := s.Record("Case", string(c2.ID))
	assert.Equal(t, billing, rec2["OwnerId"])
	assert.Equal(t, 1, queries(), "the queue is looked up once")

	// A Regular group of that name is not a queue: noted on the case.
	req3 := newCaseReq(testMail(0, 0))
	req3.Queue = "Sales"
	c3, err := d.CreateCase(ctx, req3)
	require.NoError(t, err)
	rec3, _ := s.Record("Case", string(c3.ID))
	assert.NotEqual(t, billing, rec3["OwnerId"])
	var noted bool
	for _, cc := range s.Records("CaseComment") {
		if cc["ParentId"] == string(c3.ID) && strings.Contains(cc["CommentBody"].(string), `queue "Sales", but no Salesforce queue has that name`) {
			noted = true
		}
	}
	assert.True(t, noted, "the missing queue is noted on the case")

	// Updates: the owner is set, the rules are not run, missing names are
	// refused.
	owner := "ann@acme.example"
	_, err = d.UpdateCase(ctx, c.ID, &driver.CaseUpdate{Owner: &owner})
	require.NoError(t, err)
	rec, _ = s.Record("Case", string(c.ID))
	assert.Equal(t, agent, rec["OwnerId"])
	assert.Equal(t, "FALSE", rec["_AutoAssign"], "an update never runs the assignment rules")
	nope := "Nowhere"
	_, err = d.UpdateCase(ctx, c.ID, &driver.CaseUpdate{Queue: &nope})
	require.Error(t, err)
	assert.Equal(t, driver.InvalidArgument, d.ErrorCode(err))
	assert.Contains(t, err.Error(), `"Nowhere"`)
	rec, _ = s.Record("Case", string(c.ID))
	assert.Equal(t, agent, rec["OwnerId"], "nothing changed")
}

// With AutoAssign TRUE the assignment rules choose the owner: the queue
// is not looked up and OwnerId is not sent.
func TestSalesforcetestQueuesAutoAssign(t *testing.T) {
	s := newSFOrg(t)
	billing := s.Insert("Group", map[string]any{"Name": "Billing", "Type": "Queue"})
	d := newDriver(t, sfOrg{s}, func(c *salesforce.Config) { c.ResolveOwners = true; c.AutoAssign = "TRUE" })
	req := newCaseReq(testMail(0, 0))
	req.Queue = "Billing"
	c, err := d.CreateCase(t.Context(), req)
	require.NoError(t, err)
	rec, _ := s.Record("Case", string(c.ID))
	assert.Equal(t, "TRUE", rec["_AutoAssign"])
	assert.NotEqual(t, billing, rec["OwnerId"])
	assert.Equal(t, "Billing", c.Queue, "the queue name is kept")
}

// A queue name that no Group had is remembered as missing for
// OwnerMissTTL only: a queue created in the org after the miss is used
// once the TTL has passed (and not before: the miss saves the lookup).
func TestSalesforcetestQueueCreatedAfterMiss(t *testing.T) {
	s := newSFOrg(t)
	now := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); defer mu.Unlock(); now = now.Add(d) }
	d := newDriver(t, sfOrg{s}, func(c *salesforce.Config) {
		c.ResolveOwners = true
		c.OwnerMissTTL = time.Minute
		c.Now = clock
	})
	ctx := t.Context()
	queries := func() int {
		n := 0
		for _, c := range s.Log() {
			if strings.Contains(c.RawQuery, "Group") {
				n++
			}
		}
		return n
	}
	create := func() map[string]any {
		t.Helper()
		req := newCaseReq(testMail(0, 0))
		req.Queue = "Returns"
		c, err := d.CreateCase(ctx, req)
		require.NoError(t, err)
		rec, ok := s.Record("Case", string(c.ID))
		require.True(t, ok)
		return rec
	}

	first := create()
	require.Equal(t, 1, queries())
	returns := s.Insert("Group", map[string]any{"Name": "Returns", "Type": "Queue"})
	assert.NotEqual(t, returns, first["OwnerId"])

	advance(30 * time.Second)
	assert.NotEqual(t, returns, create()["OwnerId"], "within the TTL the miss is reused")
	assert.Equal(t, 1, queries(), "no lookup within the TTL")

	advance(31 * time.Second)
	assert.Equal(t, returns, create()["OwnerId"], "after the TTL the new queue is found")
	assert.Equal(t, 2, queries())
	create()
	assert.Equal(t, 2, queries(), "a name found stays cached")
}

// A negative OwnerMissTTL remembers no miss, and updates see a queue
// created after a refused update.
func TestSalesforcetestOwnerMissNotRemembered(t *testing.T) {
	s := newSFOrg(t)
	d := newDriver(t, sfOrg{s}, func(c *salesforce.Config) { c.ResolveOwners = true; c.OwnerMissTTL = -1 })
	ctx := t.Context()
	c, err := d.CreateCase(ctx, newCaseReq(testMail(0, 0)))
	require.NoError(t, err)
	q := "Returns"
	_, err = d.UpdateCase(ctx, c.ID, &driver.CaseUpdate{Queue: &q})
	require.Error(t, err)
	assert.Equal(t, driver.InvalidArgument, d.ErrorCode(err))
	returns := s.Insert("Group", map[string]any{"Name": "Returns", "Type": "Queue"})
	_, err = d.UpdateCase(ctx, c.ID, &driver.CaseUpdate{Queue: &q})
	require.NoError(t, err)
	rec, _ := s.Record("Case", string(c.ID))
	assert.Equal(t, returns, rec["OwnerId"])
}
