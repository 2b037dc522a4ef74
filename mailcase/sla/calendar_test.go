package sla_test

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase/sla"
)

func officeHours(t *testing.T, zone string, holidays ...string) *sla.Calendar {
	t.Helper()
	week := []string{"09:00-17:00"}
	cal, err := sla.NewCalendar(sla.CalendarConfig{Zone: zone, Holidays: holidays, Hours: map[string][]string{
		"mon": week, "tue": week, "wed": week, "thu": week, "fri": week,
	}})
	require.NoError(t, err)
	return cal
}

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	l, err := time.LoadLocation(name)
	require.NoError(t, err)
	return l
}

func TestCalendar_NilIsAroundTheClock(t *testing.T) {
	var cal *sla.Calendar
	start := time.Date(2026, 3, 7, 23, 0, 0, 0, time.UTC)
	assert.Equal(t, start.Add(50*time.Hour), cal.Add(start, 50*time.Hour))
	assert.Equal(t, 50*time.Hour, cal.Between(start, start.Add(50*time.Hour)))
	assert.Zero(t, cal.Between(start, start.Add(-time.Hour)))
}

func TestCalendar_AcrossWeekend(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	cal := officeHours(t, "Europe/Berlin")
	start := time.Date(2026, 3, 6, 16, 0, 0, 0, berlin) // Friday
	got := cal.Add(start, 2*time.Hour)
	assert.True(t, got.Equal(time.Date(2026, 3, 9, 10, 0, 0, 0, berlin)), "Add = %s, want Monday 10:00", got.In(berlin))
	assert.Equal(t, 2*time.Hour, cal.Between(start, got))
	// A start on Saturday counts from Monday 09:00.
	sat := time.Date(2026, 3, 7, 11, 0, 0, 0, berlin)
	assert.True(t, cal.Add(sat, 30*time.Minute).Equal(time.Date(2026, 3, 9, 9, 30, 0, 0, berlin)))
	assert.Zero(t, cal.Between(sat, sat.Add(24*time.Hour)))
}

func TestCalendar_Holiday(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	cal := officeHours(t, "Europe/Berlin", "2026-12-25")
	start := time.Date(2026, 12, 24, 16, 0, 0, 0, berlin) // Thursday; Friday is a holiday
	got := cal.Add(start, 2*time.Hour)
	assert.True(t, got.Equal(time.Date(2026, 12, 28, 10, 0, 0, 0, berlin)), "Add = %s, want Monday 28th 10:00", got.In(berlin))
	assert.Equal(t, 2*time.Hour, cal.Between(start, got))
	without := officeHours(t, "Europe/Berlin")
	assert.True(t, without.Add(start, 2*time.Hour).Equal(time.Date(2026, 12, 25, 10, 0, 0, 0, berlin)))
}

func TestCalendar_SeveralSpansPerDay(t *testing.T) {
	cal, err := sla.NewCalendar(sla.CalendarConfig{Hours: map[string][]string{"wed": {"13:00-17:00", "09:00-12:00"}}})
	require.NoError(t, err)
	start := time.Date(2026, 3, 4, 11, 0, 0, 0, time.UTC) // Wednesday
	assert.Equal(t, time.Date(2026, 3, 4, 14, 0, 0, 0, time.UTC), cal.Add(start, 2*time.Hour))
	// 5 hours left on Wednesday, the last two on the next Wednesday.
	assert.Equal(t, time.Date(2026, 3, 11, 11, 0, 0, 0, time.UTC), cal.Add(start, 7*time.Hour))
	assert.Equal(t, 7*time.Hour, cal.Between(start, time.Date(2026, 3, 11, 11, 0, 0, 0, time.UTC)))
}

// Office hours stay 09:00-17:00 in the wall clock across both changes of
// both zones: a 2-hour target started Friday 16:00 is due Monday 10:00
// local time, whatever the UTC offset did over the weekend.
func TestCalendar_DST(t *testing.T) {
	for _, tc := range []struct {
		name    string
		zone    string
		friday  time.Time // date only
		wantUTC int       // hour of Monday 10:00 local in UTC
	}{
		{name: "Berlin spring", zone: "Europe/Berlin", friday: time.Date(2026, 3, 27, 0, 0, 0, 0, time.UTC), wantUTC: 8},
		{name: "Berlin autumn", zone: "Europe/Berlin", friday: time.Date(2026, 10, 23, 0, 0, 0, 0, time.UTC), wantUTC: 9},
		{name: "New York spring", zone: "America/New_York", friday: time.Date(2026, 3, 6, 0, 0, 0, 0, time.UTC), wantUTC: 14},
		{name: "New York autumn", zone: "America/New_York", friday: time.Date(2026, 10, 30, 0, 0, 0, 0, time.UTC), wantUTC: 15},
	} {
		t.Run(tc.name, func(t *testing.T) {
			loc := zone(t, tc.zone)
			cal := officeHours(t, tc.zone)
			start := time.Date(tc.friday.Year(), tc.friday.Month(), tc.friday.Day(), 16, 0, 0, 0, loc)
			got := cal.Add(start, 2*time.Hour)
			local := got.In(loc)
			assert.Equal(t, 10, local.Hour(), "Add = %s", local)
			assert.Equal(t, time.Monday, local.Weekday())
			assert.Equal(t, tc.wantUTC, got.UTC().Hour())
			assert.Equal(t, 2*time.Hour, cal.Between(start, got))
			// The offset really changed over the weekend.
			_, before := start.Zone()
			_, after := got.Zone()
			assert.NotEqual(t, before, after)
		})
	}
}

// A calendar open around the clock in a zone counts real time: the night
// of the change is an hour shorter (spring) or longer (autumn).
func TestCalendar_DSTNightInSpan(t *testing.T) {
	all := []string{"00:00-24:00"}
	for _, tc := range []struct {
		zone string
		day  time.Time
		want time.Duration
	}{
		{"Europe/Berlin", time.Date(2026, 3, 29, 0, 0, 0, 0, time.UTC), 23 * time.Hour},
		{"Europe/Berlin", time.Date(2026, 10, 25, 0, 0, 0, 0, time.UTC), 25 * time.Hour},
		{"America/New_York", time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC), 23 * time.Hour},
		{"America/New_York", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), 25 * time.Hour},
	} {
		loc := zone(t, tc.zone)
		cal, err := sla.NewCalendar(sla.CalendarConfig{Zone: tc.zone, Hours: map[string][]string{
			"sun": all, "mon": all, "tue": all, "wed": all, "thu": all, "fri": all, "sat": all}})
		require.NoError(t, err)
		a := time.Date(tc.day.Year(), tc.day.Month(), tc.day.Day(), 0, 0, 0, 0, loc)
		b := time.Date(tc.day.Year(), tc.day.Month(), tc.day.Day()+1, 0, 0, 0, 0, loc)
		assert.Equal(t, tc.want, cal.Between(a, b), "%s %s", tc.zone, tc.day.Format("2006-01-02"))
		assert.Equal(t, tc.want, b.Sub(a))
		assert.True(t, cal.Add(a, tc.want).Equal(b))
	}
}

// Between inverts Add for any start and duration.
func TestCalendar_BetweenInvertsAdd(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, z := range []string{"Europe/Berlin", "America/New_York"} {
		cal := officeHours(t, z, "2026-03-30", "2026-11-02")
		base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		for range 300 {
			start := base.Add(time.Duration(r.Int64N(int64(365 * 24 * time.Hour))))
			d := time.Duration(r.Int64N(int64(60 * time.Hour)))
			end := cal.Add(start, d)
			require.Equal(t, d, cal.Between(start, end), "%s start %s d %s", z, start, d)
			require.False(t, end.Before(start))
		}
	}
}

func TestNewCalendar_Errors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  sla.CalendarConfig
	}{
		{"no hours", sla.CalendarConfig{}},
		{"bad zone", sla.CalendarConfig{Zone: "Mars/Olympus", Hours: map[string][]string{"mon": {"09:00-17:00"}}}},
		{"bad day", sla.CalendarConfig{Hours: map[string][]string{"funday": {"09:00-17:00"}}}},
		{"bad span", sla.CalendarConfig{Hours: map[string][]string{"mon": {"9-17"}}}},
		{"reversed", sla.CalendarConfig{Hours: map[string][]string{"mon": {"17:00-09:00"}}}},
		{"overlap", sla.CalendarConfig{Hours: map[string][]string{"mon": {"09:00-13:00", "12:00-17:00"}}}},
		{"past midnight", sla.CalendarConfig{Hours: map[string][]string{"mon": {"09:00-24:30"}}}},
		{"bad holiday", sla.CalendarConfig{Hours: map[string][]string{"mon": {"09:00-17:00"}}, Holidays: []string{"25.12.2026"}}},
	} {
		_, err := sla.NewCalendar(tc.cfg)
		assert.Error(t, err, tc.name)
	}
}

// FuzzCalendar: any span text either fails NewCalendar or gives a calendar
// whose Between inverts Add.
func FuzzCalendar(f *testing.F) {
	f.Add("09:00-17:00", "13:00-14:00", "Europe/Berlin", int64(3*time.Hour), int64(0))
	f.Add("00:00-24:00", "", "America/New_York", int64(50*time.Hour), int64(1e15))
	f.Add("9-17", "xx", "", int64(1), int64(-5))
	f.Fuzz(func(t *testing.T, span1, span2, zone string, d, off int64) {
		spans := []string{span1}
		if span2 != "" {
			spans = append(spans, span2)
		}
		if zone != "" && zone != "Europe/Berlin" && zone != "America/New_York" {
			zone = "UTC"
		}
		cal, err := sla.NewCalendar(sla.CalendarConfig{Zone: zone, Hours: map[string][]string{"tue": spans, "sat": {span1}}})
		if err != nil {
			return
		}
		dur := time.Duration(d % int64(500*time.Hour))
		if dur < 0 {
			dur = -dur
		}
		start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(off % int64(365*24*time.Hour)))
		end := cal.Add(start, dur)
		if end.Before(start) {
			t.Fatalf("Add(%s, %s) = %s, before the start", start, dur, end)
		}
		if got := cal.Between(start, end); got != dur {
			t.Fatalf("Between(start, Add(start, %s)) = %s", dur, got)
		}
	})
}

// A span whose start or end lies in the hour the clock skips in spring or
// repeats in autumn: each boundary is the first instant the wall clock
// shows it, or, for a time the clock skips, the instant of the change. Every
// case is a Sunday of a change, the only day with hours.
func TestCalendar_SpanBoundariesAtDSTChanges(t *testing.T) {
	utc := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return v
	}
	for _, tc := range []struct {
		name       string
		zone, day  string
		span       string
		start, end string // the span's instants, UTC
	}{
		{"Berlin spring, start in the gap", "Europe/Berlin", "2026-03-29", "02:30-10:00", "2026-03-29T01:00:00Z", "2026-03-29T08:00:00Z"},
		{"Berlin spring, end in the gap", "Europe/Berlin", "2026-03-29", "01:00-02:30", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z"},
		{"Berlin spring, across the gap", "Europe/Berlin", "2026-03-29", "01:30-03:30", "2026-03-29T00:30:00Z", "2026-03-29T01:30:00Z"},
		{"Berlin spring, all in the gap", "Europe/Berlin", "2026-03-29", "02:00-02:30", "", ""},
		{"New York spring, start in the gap", "America/New_York", "2026-03-08", "02:30-10:00", "2026-03-08T07:00:00Z", "2026-03-08T14:00:00Z"},
		{"New York spring, end in the gap", "America/New_York", "2026-03-08", "01:00-02:30", "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z"},
		{"Berlin autumn, start in the repeated hour", "Europe/Berlin", "2026-10-25", "02:30-10:00", "2026-10-25T00:30:00Z", "2026-10-25T09:00:00Z"},
		{"Berlin autumn, end in the repeated hour", "Europe/Berlin", "2026-10-25", "00:00-02:30", "2026-10-24T22:00:00Z", "2026-10-25T00:30:00Z"},
		{"Berlin autumn, across the repeated hour", "Europe/Berlin", "2026-10-25", "00:00-03:00", "2026-10-24T22:00:00Z", "2026-10-25T02:00:00Z"},
		{"Berlin autumn, all in the repeated hour", "Europe/Berlin", "2026-10-25", "02:00-02:30", "2026-10-25T00:00:00Z", "2026-10-25T00:30:00Z"},
		{"New York autumn, start in the repeated hour", "America/New_York", "2026-11-01", "01:30-10:00", "2026-11-01T05:30:00Z", "2026-11-01T15:00:00Z"},
		{"New York autumn, end in the repeated hour", "America/New_York", "2026-11-01", "00:00-01:30", "2026-11-01T04:00:00Z", "2026-11-01T05:30:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cal, err := sla.NewCalendar(sla.CalendarConfig{Zone: tc.zone, Hours: map[string][]string{"sun": {tc.span}}})
			require.NoError(t, err)
			day := utc(tc.day + "T00:00:00Z")
			from, to := day.Add(-24*time.Hour), day.Add(48*time.Hour)
			if tc.start == "" {
				assert.Zero(t, cal.Between(from, to), "a span the clock skips has no time")
				return
			}
			start, end := utc(tc.start), utc(tc.end)
			length := end.Sub(start)
			assert.Equal(t, length, cal.Between(from, to), "length of the span")
			assert.True(t, cal.Add(from, time.Minute).Equal(start.Add(time.Minute)), "Add(before, 1m) = %s, want %s", cal.Add(from, time.Minute).UTC(), start.Add(time.Minute))
			assert.True(t, cal.Add(from, length).Equal(end), "Add(before, span) = %s, want %s", cal.Add(from, length).UTC(), end)
			// A start inside the span counts from there.
			mid := start.Add(length / 2)
			assert.Equal(t, length-length/2, cal.Between(mid, to))
			assert.True(t, cal.Add(mid, length-length/2).Equal(end))
		})
	}
}

// An instant inside the repeated hour (its second occurrence) or just
// after the gap starts a clock where it is.
func TestCalendar_StartInsideAChange(t *testing.T) {
	berlin := zone(t, "Europe/Berlin")
	cal, err := sla.NewCalendar(sla.CalendarConfig{Zone: "Europe/Berlin", Hours: map[string][]string{"sun": {"00:00-10:00"}}})
	require.NoError(t, err)
	// 02:15 the second time (standard time), 2026-10-25.
	second := time.Date(2026, 10, 25, 1, 15, 0, 0, time.UTC)
	require.Equal(t, 2, second.In(berlin).Hour())
	require.Equal(t, 15, second.In(berlin).Minute())
	got := cal.Add(second, 2*time.Hour)
	assert.True(t, got.Equal(time.Date(2026, 10, 25, 3, 15, 0, 0, time.UTC)), "Add = %s", got.In(berlin))
	assert.Equal(t, 2*time.Hour, cal.Between(second, got))
	// Business hours from the first 02:15 (summer time) to the second
	// are the real hour between them.
	first := second.Add(-time.Hour)
	assert.Equal(t, time.Hour, cal.Between(first, second))
	// A two-hour target started at 01:30 on the spring day is due at
	// 04:30 summer time: 01:30-02:00 and 03:00-04:30.
	spring := time.Date(2026, 3, 29, 1, 30, 0, 0, berlin)
	due := cal.Add(spring, 2*time.Hour)
	assert.Equal(t, "04:30 CEST", due.In(berlin).Format("15:04 MST"))
	assert.Equal(t, 2*time.Hour, due.Sub(spring))
}
