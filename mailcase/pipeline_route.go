package mailcase

import (
	"context"
	"strings"
)

// mailboxRouter puts the mailbox's own routing rules in front of the
// caller's Router, so that the pipeline asks one Router for every new case.
// In order:
//
//   - under AmbiguousInternal, a sender that matched several records goes
//     to InternalQueue unassigned, even when the mailbox bypasses routing;
//   - a mailbox with Bypass sends every new case to DefaultQueue;
//   - with no caller Router, DefaultQueue;
//   - otherwise the caller's Router decides, and a route without a queue
//     falls back to DefaultQueue.
type mailboxRouter struct {
	mb   *Mailbox
	next Router // nil: no caller router
}

// Route implements Router.
func (r mailboxRouter) Route(ctx context.Context, d *Delivery) (Route, error) {
	mb := r.mb
	switch {
	case d.Sender.Kind == SenderAmbiguous && mb.Ambiguity == AmbiguousInternal:
		return Route{Queue: mb.InternalQueue, Rule: "ambiguous-sender", Reason: "ambiguous sender handed to the internal-support queue"}, nil
	case mb.Bypass:
		return Route{Queue: mb.DefaultQueue, Rule: "bypass", Reason: "mailbox bypasses routing"}, nil
	case r.next == nil:
		return Route{Queue: mb.DefaultQueue, Rule: "default", Reason: "no router; default queue"}, nil
	}
	route, err := r.next.Route(ctx, d)
	if err != nil {
		return Route{}, err
	}
	if strings.TrimSpace(route.Queue) == "" {
		route.Queue = mb.DefaultQueue
		route.Reason = join(route.Reason, "no queue decided; default queue")
	}
	return route, nil
}
