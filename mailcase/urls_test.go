package mailcase_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// recordingOpener opens memstores and remembers the URLs it saw.
type recordingOpener struct{ seen []string }

func (o *recordingOpener) OpenStoreURL(_ context.Context, u *url.URL) (*mailcase.Store, error) {
	o.seen = append(o.seen, u.String())
	if err := mailcase.CheckQuery(u, "mailbox", "debug"); err != nil {
		return nil, err
	}
	return memstore.OpenStore(nil)
}

func TestURLMux(t *testing.T) {
	var m mailcase.URLMux
	assert.Empty(t, m.Schemes(), "the zero URLMux is usable")
	a, b := &recordingOpener{}, &recordingOpener{}
	m.RegisterStore("zeta", a)
	m.RegisterStore("alpha", b)
	assert.Equal(t, []string{"alpha", "zeta"}, m.Schemes())

	s, err := m.OpenStore(t.Context(), "zeta://host/path?mailbox=support&debug=1")
	require.NoError(t, err)
	require.NoError(t, s.Close())
	assert.Equal(t, []string{"zeta://host/path?mailbox=support&debug=1"}, a.seen)
	assert.Empty(t, b.seen)

	_, err = m.OpenStore(t.Context(), "alpha://?secret=1")
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
	assert.ErrorContains(t, err, `unknown query parameter "secret"`)

	_, err = m.OpenStore(t.Context(), "nosuch://x")
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
	assert.ErrorContains(t, err, `"nosuch"`)
	assert.ErrorContains(t, err, "alpha, zeta", "the error lists the registered schemes")

	_, err = m.OpenStoreURL(t.Context(), nil)
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))

	_, err = m.OpenStore(t.Context(), "://bad url")
	assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
	assert.ErrorIs(t, err, mailcase.ErrInvalidArgument)
}

func TestURLMux_RegisterPanics(t *testing.T) {
	var m mailcase.URLMux
	m.RegisterStore("x", &recordingOpener{})
	assert.PanicsWithValue(t, "mailcase: store scheme x registered twice", func() { m.RegisterStore("x", &recordingOpener{}) })
	assert.Panics(t, func() { m.RegisterStore("y", nil) })
	assert.Equal(t, []string{"x"}, m.Schemes())
}

func TestOpenStore_Default(t *testing.T) {
	assert.Same(t, mailcase.DefaultURLMux(), mailcase.DefaultURLMux())
	s, err := mailcase.OpenStore(t.Context(), "mem://")
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = mailcase.OpenStore(t.Context(), "unregistered://")
	assert.ErrorContains(t, err, "mem", "the default mux lists memstore's scheme")
}

func TestCheckQuery(t *testing.T) {
	tests := []struct {
		name    string
		url     string
		allowed []string
		wantErr string // "" for no error, else a part of the message
	}{
		{name: "no query", url: "x://h"},
		{name: "allowed", url: "x://h?a=1&b=2", allowed: []string{"a", "b"}},
		{name: "unknown", url: "x://h?a=1&c=2", allowed: []string{"a"}, wantErr: `"c" in x URL`},
		{name: "none allowed", url: "x://h?a=1", wantErr: `"a"`},
		{name: "several unknown: first sorted", url: "x://h?zz=1&b=2&a=1", allowed: []string{"a"}, wantErr: `"b"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := url.Parse(tc.url)
			require.NoError(t, err)
			err = mailcase.CheckQuery(u, tc.allowed...)
			if tc.wantErr == "" {
				assert.NoError(t, err)
				return
			}
			assert.Equal(t, mailcase.InvalidArgument, mailcase.Code(err))
			assert.ErrorContains(t, err, tc.wantErr)
		})
	}
}
