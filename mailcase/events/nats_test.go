package events_test

import (
	"encoding/json"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/driver"
	"github.com/emailcrm/emailcrm/mailcase/events"
)

const natsURL = "nats://127.0.0.1:4222"

// natsConn connects to the local NATS server (skipping when it is absent,
// failing when EMAILCRM_REQUIRE_SERVICES=1).
func natsConn(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(natsURL, nats.Timeout(2*time.Second), nats.MaxReconnects(0))
	if err != nil {
		serviceUnavailable(t, "NATS at "+natsURL, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// natsSink opens a sink on a stream of its own, deleted at cleanup.
func natsSink(t testing.TB, nc *nats.Conn) (*events.NATSSink, jetstream.Stream) {
	t.Helper()
	ctx := t.Context()
	name := "EMAILCRM_TEST_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	subject := "emailcrm.test." + name
	sink, err := events.OpenNATSSink(ctx, nc, &events.NATSOptions{Subject: subject, Stream: name})
	if err != nil {
		serviceUnavailable(t, "NATS JetStream (nats-server -js)", err)
	}
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	st, err := js.Stream(ctx, name)
	require.NoError(t, err)
	t.Cleanup(func() { _ = js.DeleteStream(t.Context(), name) })
	return sink, st
}

func TestNATSSink_PublishesOnceWithMessageIDs(t *testing.T) {
	ctx := t.Context()
	nc := natsConn(t)
	sink, st := natsSink(t, nc)
	s := memStore(t)
	rec, err := events.NewRecorder(s, &events.RecorderOptions{Sinks: []events.Sink{sink}})
	require.NoError(t, err)
	const n = 10
	for i := range n {
		_, err := rec.Record(ctx, events.CaseCreated, driver.CaseID(strconv.Itoa(i)), map[string]any{"mailbox": "m", "message_id": strconv.Itoa(i)})
		require.NoError(t, err)
	}
	d, err := events.NewDeliverer(s, []events.Sink{sink}, &events.DelivererOptions{Parallel: 1, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	drain(t, ctx, d, s, sink.SinkName())

	// A redelivery (a deliverer killed before recording its result)
	// publishes again with the same message ID: JetStream drops it.
	log, err := s.ReadEvents(ctx, 0, 100)
	require.NoError(t, err)
	e := events.FromRecord(&log[0])
	require.NoError(t, sink.Send(ctx, &e, 2))

	info, err := st.Info(ctx)
	require.NoError(t, err)
	assert.Equal(t, uint64(n), info.State.Msgs, "one stored message per event")

	m, err := st.GetMsg(ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, sink.Subject(events.CaseCreated), m.Subject)
	assert.Equal(t, log[0].ID, m.Header.Get("Nats-Msg-Id"))
	var env events.Event
	require.NoError(t, json.Unmarshal(m.Data, &env))
	assert.Equal(t, log[0].ID, env.ID)
	assert.Equal(t, events.CaseCreated, env.Kind)
}

func TestNATSSink_Filter(t *testing.T) {
	nc := natsConn(t)
	sink, err := events.OpenNATSSink(t.Context(), nc, &events.NATSOptions{Name: "sla", Kinds: []string{"sla.*"}})
	require.NoError(t, err)
	assert.Equal(t, "nats:sla", sink.SinkName())
	assert.True(t, sink.Accepts(events.SLABreach))
	assert.False(t, sink.Accepts(events.CaseCreated))
}
