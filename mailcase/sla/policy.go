package sla

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// StatusWaitingOnCustomer is the status that pauses the clocks when a
// policy names none: the case waits for the customer's answer.
const StatusWaitingOnCustomer = driver.StatusWaiting

// Target is one service-level target: a warning and a final time measured
// from the start of the clock, in business time (on the policy's
// calendar) or real time.
type Target struct {
	// Warn is when the warning is due (0 for no warning); it must be
	// before Due.
	Warn time.Duration `yaml:"warn" json:"warn"`
	// Due is the final time; 0 means the policy has no such target.
	Due time.Duration `yaml:"due" json:"due"`
	// Business counts only the business hours of the policy's calendar;
	// false counts real time.
	Business bool `yaml:"business" json:"business"`
}

// Set reports whether the target is defined.
func (t Target) Set() bool { return t.Due > 0 }

// Policy is a set of service-level targets for a mailbox or a queue.
type Policy struct {
	// FirstResponse runs until the first agent reply, NextResponse from a
	// customer mail after an agent reply until the next agent reply,
	// Resolution until the case closes. A zero Target is not tracked.
	FirstResponse Target `yaml:"first_response" json:"first_response"`
	NextResponse  Target `yaml:"next_response" json:"next_response"`
	Resolution    Target `yaml:"resolution" json:"resolution"`
	// Calendar names the business calendar of the business targets; ""
	// means around the clock.
	Calendar string `yaml:"calendar" json:"calendar"`
	// PauseStatuses are the case statuses that pause the clocks; nil means
	// StatusWaitingOnCustomer, an empty non-nil list means none.
	PauseStatuses []driver.CaseStatus `yaml:"pause_statuses" json:"pause_statuses"`
}

// target returns the policy's target of kind k.
func (p *Policy) target(k driver.SLAKind) Target {
	switch k {
	case driver.SLAFirstResponse:
		return p.FirstResponse
	case driver.SLANextResponse:
		return p.NextResponse
	case driver.SLAResolution:
		return p.Resolution
	}
	return Target{}
}

// Kinds lists the targets in their order.
var Kinds = []driver.SLAKind{driver.SLAFirstResponse, driver.SLANextResponse, driver.SLAResolution}

// Config is the service-level configuration: calendars and policies by
// name, and which policy applies to each mailbox and queue. A queue's
// policy overrides the mailbox's for every target the queue's policy sets
// (the mailbox-level timer of that target is kept but gives no alert while
// the case is on that queue).
type Config struct {
	Calendars map[string]CalendarConfig `yaml:"calendars" json:"calendars"`
	Policies  map[string]Policy         `yaml:"policies" json:"policies"`
	// Mailboxes and Queues map a mailbox or queue name to a policy name;
	// "*" applies to every mailbox (queue) not listed.
	Mailboxes map[string]string `yaml:"mailboxes" json:"mailboxes"`
	Queues    map[string]string `yaml:"queues" json:"queues"`
}

// Policies is a validated Config. It is immutable and safe for concurrent
// use.
type Policies struct {
	cals      map[string]*Calendar
	policies  map[string]Policy
	mailboxes map[string]string
	queues    map[string]string
}

// Compile validates c: calendars parse, policies name known calendars and
// have warnings before their final times, mailboxes and queues name known
// policies.
func Compile(c Config) (*Policies, error) {
	p := &Policies{cals: map[string]*Calendar{}, policies: map[string]Policy{},
		mailboxes: map[string]string{}, queues: map[string]string{}}
	for _, name := range sortedKeys(c.Calendars) {
		cal, err := NewCalendar(c.Calendars[name])
		if err != nil {
			return nil, fmt.Errorf("sla: calendar %q: %w", name, err)
		}
		p.cals[name] = cal
	}
	for _, name := range sortedKeys(c.Policies) {
		pol := c.Policies[name]
		if pol.Calendar != "" && p.cals[pol.Calendar] == nil {
			return nil, fmt.Errorf("sla: policy %q: unknown calendar %q", name, pol.Calendar)
		}
		for _, k := range Kinds {
			t := pol.target(k)
			switch {
			case t.Due < 0 || t.Warn < 0:
				return nil, fmt.Errorf("sla: policy %q: %s: negative time", name, k)
			case t.Warn > 0 && !t.Set():
				return nil, fmt.Errorf("sla: policy %q: %s: a warning needs a final time", name, k)
			case t.Warn >= t.Due && t.Set() && t.Warn > 0:
				return nil, fmt.Errorf("sla: policy %q: %s: the warning (%s) must come before the final time (%s)", name, k, t.Warn, t.Due)
			case t.Business && pol.Calendar == "":
				return nil, fmt.Errorf("sla: policy %q: %s counts business time but the policy names no calendar", name, k)
			}
		}
		if pol.PauseStatuses == nil {
			pol.PauseStatuses = []driver.CaseStatus{StatusWaitingOnCustomer}
		}
		for _, s := range pol.PauseStatuses {
			if s.IsClosed() {
				return nil, fmt.Errorf("sla: policy %q: status %q closes the case; it cannot pause it", name, s)
			}
		}
		pol.PauseStatuses = slices.Clone(pol.PauseStatuses)
		p.policies[name] = pol
	}
	for _, m := range []struct {
		what string
		in   map[string]string
		out  map[string]string
	}{{"mailbox", c.Mailboxes, p.mailboxes}, {"queue", c.Queues, p.queues}} {
		for _, k := range sortedKeys(m.in) {
			if _, ok := p.policies[m.in[k]]; !ok {
				return nil, fmt.Errorf("sla: %s %q: unknown policy %q", m.what, k, m.in[k])
			}
			m.out[k] = m.in[k]
		}
	}
	return p, nil
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// lookup returns the policy for name in m ("*" as the fallback).
func (p *Policies) lookup(m map[string]string, name string) (string, Policy, bool) {
	if p == nil {
		return "", Policy{}, false
	}
	pn, ok := m[name]
	if !ok {
		pn, ok = m["*"]
	}
	if !ok || name == "" {
		return "", Policy{}, false
	}
	return pn, p.policies[pn], true
}

// Mailbox returns the name and policy of a mailbox, if it has one.
func (p *Policies) Mailbox(name string) (string, Policy, bool) {
	if p == nil {
		return "", Policy{}, false
	}
	return p.lookup(p.mailboxes, name)
}

// Queue returns the name and policy of a queue, if it has one.
func (p *Policies) Queue(name string) (string, Policy, bool) {
	if p == nil {
		return "", Policy{}, false
	}
	return p.lookup(p.queues, name)
}

// Calendar returns the calendar of a name (nil for "", around the clock)
// and whether the name is known.
func (p *Policies) Calendar(name string) (*Calendar, bool) {
	if name == "" {
		return nil, true
	}
	if p == nil {
		return nil, false
	}
	c, ok := p.cals[name]
	return c, ok
}

// Policy returns a policy by name.
func (p *Policies) Policy(name string) (Policy, bool) {
	if p == nil {
		return Policy{}, false
	}
	pol, ok := p.policies[name]
	return pol, ok
}
