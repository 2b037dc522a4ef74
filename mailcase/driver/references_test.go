package driver_test

import (
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

func TestIndexedReferences(t *testing.T) {
	assert.Empty(t, driver.IndexedReferences(&driver.Email{MessageID: "self@x"}))
	assert.Equal(t, []string{"p@x", "root@x", "mid@x"}, driver.IndexedReferences(&driver.Email{
		MessageID: "self@x", InReplyTo: []string{"p@x", ""}, References: []string{"root@x", "self@x", "mid@x", "p@x"},
	}), "In-Reply-To, the root, then the rest; no own ID, no empty ID, no repeats")

	refs := make([]string, 500)
	for i := range refs {
		refs[i] = "r" + strconv.Itoa(i) + "@x"
	}
	got := driver.IndexedReferences(&driver.Email{InReplyTo: []string{"r499@x"}, References: refs})
	assert.Len(t, got, driver.MaxIndexedReferences-1, "In-Reply-To repeats the last reference")
	assert.Equal(t, []string{"r499@x", "r0@x", "r438@x"}, got[:3])
	assert.Equal(t, "r498@x", got[len(got)-1])
}
