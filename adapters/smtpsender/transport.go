package smtpsender

import "github.com/emailcrm/emailcrm/mailcase/outbox"

// A Sender is the outbox's Transport: the Deliverer reads Permanent and
// PartlyDelivered of its errors.
var _ outbox.Transport = (*Sender)(nil)

// PartlyDelivered reports whether the message was accepted for some
// recipients while others were refused (Delivered).
func (e *SendError) PartlyDelivered() bool { return e.Delivered }
