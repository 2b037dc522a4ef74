package sla

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// CalendarConfig is a business calendar as written in a configuration
// file.
type CalendarConfig struct {
	// Zone is the IANA time zone of the hours ("Europe/Berlin"); "" means
	// UTC.
	Zone string `yaml:"zone" json:"zone"`
	// Hours lists, per weekday ("mon" ... "sun", or "monday" ...), the
	// business spans of the day as "HH:MM-HH:MM" in the zone's wall clock
	// ("09:00-12:30", "13:30-17:00"; "24:00" ends a span at midnight). A
	// weekday that is not listed has no business hours.
	Hours map[string][]string `yaml:"hours" json:"hours"`
	// Holidays are dates without business hours, "YYYY-MM-DD".
	Holidays []string `yaml:"holidays" json:"holidays"`
}

// span is a business span of a day in minutes after midnight, [start, end).
type span struct{ start, end int }

// date is a civil date.
type date struct {
	y int
	m time.Month
	d int
}

// Calendar is a business calendar: weekly hours in a time zone, minus
// holidays. Durations count only the time inside business hours, computed
// in the zone's wall clock, so a span from 09:00 to 17:00 stays 09:00 to
// 17:00 across daylight-saving changes (and a span containing the change
// is an hour longer or shorter in real time, as the clock on the wall
// says). A span runs from the first instant the wall clock shows its start
// to the first instant it shows its end; a time the clock skips when
// daylight saving time begins (02:30 in Europe/Berlin on its spring day)
// stands for the instant of the change (03:00 summer time), so a span
// 02:30-10:00 that day lasts 7 hours and one 02:00-02:30 none. A time the
// clock shows twice when daylight saving time ends is its first
// occurrence, so the repeated hour counts once more when it lies inside a
// span (00:00-03:00 that day lasts 4 hours), and not when the span ends
// within it (00:00-02:30 lasts 2.5 hours). A nil *Calendar means around the clock: every instant counts.
// A Calendar is immutable and safe for concurrent use.
type Calendar struct {
	loc      *time.Location
	week     [7][]span // by time.Weekday
	holidays map[date]bool
}

var weekdays = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
	"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday,
	"thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday,
}

// NewCalendar validates c and returns its calendar. A calendar needs at
// least one business span in the week; spans of a day must not overlap.
func NewCalendar(c CalendarConfig) (*Calendar, error) {
	loc := time.UTC
	if c.Zone != "" {
		l, err := time.LoadLocation(c.Zone)
		if err != nil {
			return nil, fmt.Errorf("sla: calendar zone %q: %w", c.Zone, err)
		}
		loc = l
	}
	cal := &Calendar{loc: loc, holidays: map[date]bool{}}
	hasHours := false
	for name, list := range c.Hours {
		wd, ok := weekdays[strings.ToLower(strings.TrimSpace(name))]
		if !ok {
			return nil, fmt.Errorf("sla: calendar: unknown weekday %q (want mon, tue, wed, thu, fri, sat or sun)", name)
		}
		if cal.week[wd] != nil {
			return nil, fmt.Errorf("sla: calendar: weekday %q listed twice", name)
		}
		spans := []span{}
		for _, s := range list {
			sp, err := parseSpan(s)
			if err != nil {
				return nil, fmt.Errorf("sla: calendar: %s: %w", name, err)
			}
			spans = append(spans, sp)
		}
		slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
		for i := 1; i < len(spans); i++ {
			if spans[i].start < spans[i-1].end {
				return nil, fmt.Errorf("sla: calendar: %s: spans overlap", name)
			}
		}
		cal.week[wd] = spans
		hasHours = hasHours || len(spans) > 0
	}
	if !hasHours {
		return nil, errors.New("sla: calendar has no business hours (set hours for at least one weekday)")
	}
	for _, h := range c.Holidays {
		t, err := time.Parse("2006-01-02", strings.TrimSpace(h))
		if err != nil {
			return nil, fmt.Errorf("sla: calendar: holiday %q is not YYYY-MM-DD", h)
		}
		cal.holidays[date{t.Year(), t.Month(), t.Day()}] = true
	}
	return cal, nil
}

// MustCalendar is NewCalendar for configurations known to be valid (tests,
// examples); it panics on an error.
func MustCalendar(c CalendarConfig) *Calendar {
	cal, err := NewCalendar(c)
	if err != nil {
		panic(err)
	}
	return cal
}

func parseSpan(s string) (span, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "-")
	if !ok {
		return span{}, fmt.Errorf("span %q is not HH:MM-HH:MM", s)
	}
	start, err1 := parseClock(a)
	end, err2 := parseClock(b)
	if err := errors.Join(err1, err2); err != nil {
		return span{}, fmt.Errorf("span %q: %w", s, err)
	}
	if end <= start {
		return span{}, fmt.Errorf("span %q ends before it starts", s)
	}
	return span{start, end}, nil
}

func parseClock(s string) (int, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("%q is not a time HH:MM between 00:00 and 24:00", s)
	}
	return hh*60 + mm, nil
}

// Location returns the calendar's time zone (UTC for a nil calendar).
func (c *Calendar) Location() *time.Location {
	if c == nil {
		return time.UTC
	}
	return c.loc
}

// day returns the civil date of t in the calendar's zone.
func (c *Calendar) day(t time.Time) date {
	l := t.In(c.loc)
	return date{l.Year(), l.Month(), l.Day()}
}

// next returns the day after d.
func (d date) next() date {
	t := time.Date(d.y, d.m, d.d+1, 12, 0, 0, 0, time.UTC)
	return date{t.Year(), t.Month(), t.Day()}
}

// spans returns the business intervals of day d as instants, in order.
func (c *Calendar) spans(d date, buf [][2]time.Time) [][2]time.Time {
	buf = buf[:0]
	if c.holidays[d] {
		return buf
	}
	wd := time.Date(d.y, d.m, d.d, 12, 0, 0, 0, time.UTC).Weekday()
	for _, s := range c.week[wd] {
		a := wallTime(d, s.start, c.loc)
		b := wallTime(d, s.end, c.loc)
		if b.After(a) {
			buf = append(buf, [2]time.Time{a, b})
		}
	}
	return buf
}

// wallTime returns the instant at which the wall clock of loc first shows
// minute (minutes after midnight, 1440 the next midnight) of day d. A
// reading the clock skips (it lies in the gap of a change to daylight
// saving time) is the instant of the change, the first at which the clock
// shows a later reading; a reading the clock shows twice (in the hour
// repeated at the end of daylight saving time) is its first occurrence.
// time.Date leaves both choices open ("not guaranteed") and makes them
// differently for zones east and west of UTC, so they are made here.
func wallTime(d date, minute int, loc *time.Location) time.Time {
	want := time.Date(d.y, d.m, d.d, 0, minute, 0, 0, time.UTC)
	reading := func(t time.Time) time.Time {
		l := t.In(loc)
		return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), l.Nanosecond(), time.UTC)
	}
	t := time.Date(d.y, d.m, d.d, 0, minute, 0, 0, loc)
	start, end := t.ZoneBounds()
	switch r := reading(t); {
	case r.After(want):
		// In a gap, taken with the offset before the change: the
		// change is the start of t's zone period.
		return start
	case r.Before(want) && !end.IsZero():
		// In a gap, taken with the offset after the change: the
		// change is the end of t's zone period.
		return end
	}
	// A reading that exists: an earlier occurrence lies in the zone
	// period before t's, when the clock was set back at its end.
	if !start.IsZero() {
		_, off := start.Add(-time.Nanosecond).Zone()
		if e := want.Add(-time.Duration(off) * time.Second); e.Before(start) && reading(e).Equal(want) {
			return e
		}
	}
	return t
}

// Add returns the instant at which d of business time has passed since
// start: start plus d for a nil calendar; otherwise the business time
// inside the calendar's spans is counted from start on, so a start outside
// business hours counts from the next span. Add(start, 0) is start; a
// negative d is taken as 0.
func (c *Calendar) Add(start time.Time, d time.Duration) time.Time {
	if d <= 0 {
		return start
	}
	if c == nil {
		return start.Add(d)
	}
	var buf [][2]time.Time
	day := c.day(start)
	// Every week has business hours and holidays are finite, so the walk
	// ends.
	for {
		buf = c.spans(day, buf)
		for _, sp := range buf {
			a, b := sp[0], sp[1]
			if !b.After(start) {
				continue
			}
			if a.Before(start) {
				a = start
			}
			if avail := b.Sub(a); d <= avail {
				return a.Add(d)
			} else {
				d -= avail
			}
		}
		day = day.next()
	}
}

// Between returns the business time from a to b (0 when b is not after
// a): b minus a for a nil calendar.
func (c *Calendar) Between(a, b time.Time) time.Duration {
	if !b.After(a) {
		return 0
	}
	if c == nil {
		return b.Sub(a)
	}
	var sum time.Duration
	var buf [][2]time.Time
	last := c.day(b)
	day := c.day(a)
	for {
		buf = c.spans(day, buf)
		for _, sp := range buf {
			s, e := sp[0], sp[1]
			if s.Before(a) {
				s = a
			}
			if e.After(b) {
				e = b
			}
			if e.After(s) {
				sum += e.Sub(s)
			}
		}
		if day == last {
			break
		}
		day = day.next()
	}
	return sum
}
