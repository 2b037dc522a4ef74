package mailcase

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
)

// quarantine sets the mail aside after a permanent failure (a
// transient one never gets here: see process). Where it goes:
//
//   - the store's quarantine when the store keeps one (Store.CanQuarantine),
//     with the Quarantine disposition; under Run, a mail whose key is
//     already quarantined (a redelivery by a source that could not set it
//     aside) is not written twice;
//   - else, when the caller sets mail aside itself
//     (ProcessOptions.SourceQuarantines, set by Run), the Quarantine
//     disposition only;
//   - else a mail refused by the mailbox policy (ErrTooLarge with
//     RejectOversized) is refused: Quarantine disposition, ActionRejected,
//     nothing kept;
//   - else nobody could keep it: Retry, the mail stays with the caller.
//
// When the quarantine cannot be written the mail is left for redelivery
// (Retry): it is never dropped.
func (j *job) quarantine(ctx context.Context, cause error, attempts int) error {
	reason := reasonOf(cause)
	canStore := j.p.store.CanQuarantine()
	if !canStore && !j.po.SourceQuarantines && !j.po.DryRun && j.reprocess == "" && !errors.Is(cause, ErrTooLarge) {
		err := fmt.Errorf("%w; the store keeps no quarantine and the caller sets no mail aside: the mail is left with it", cause)
		j.retryLater(err)
		return err // logged by the caller (Run logs every Retry)
	}
	j.out.Action = ActionQuarantined
	j.out.Disposition = Quarantine
	j.out.Error = reason
	// A mail refused for its content (too large, unparseable) is a decision,
	// not a failure; everything else counts as an error and needs an
	// operator (Error level).
	level := slog.LevelWarn
	if !(j.stage == stageSize || j.stage == stageParse) || Code(cause) != InvalidArgument {
		level = slog.LevelError
		if !j.po.DryRun {
			j.p.stats.errors.Add(1)
		}
	}
	switch {
	case j.po.DryRun:
		j.out.Record(stageQuarantine, "would quarantine", reason)
		return nil
	case j.reprocess != "":
		j.out.Record(stageQuarantine, "kept", "still failing; stays quarantined as "+j.reprocess+": "+reason)
		return nil
	case !canStore && j.po.SourceQuarantines:
		j.out.Record(stageQuarantine, "source", "the store keeps no quarantine; the source sets the mail aside: "+reason)
		j.logger().Log(ctx, level, "mail quarantined by the source", logKeyErr, reason, logKeyAttempt, attempts)
		return nil
	case !canStore:
		// ErrTooLarge: refused by the mailbox policy; an MTA bounces it.
		j.out.Action = ActionRejected
		j.out.Record(stageQuarantine, "refused", "the store keeps no quarantine; the mail is refused, not kept: "+reason)
		j.logger().Log(ctx, level, "mail refused", logKeyErr, reason)
		return nil
	}
	qkey := ""
	if j.po.SourceQuarantines {
		// Only a source redelivers a mail it was told to set aside (a
		// source that cannot); the same source keeps it, so skipping the
		// second item loses nothing. A caller without its own quarantine
		// (an MTA answered 5xx) never redelivers it.
		qkey = j.quarantineStateKey()
	}
	if id, ok := j.quarantinedBefore(ctx, qkey); ok {
		j.out.Record(stageQuarantine, "already", "already quarantined as "+id+"; no second item: "+reason)
		j.logger().Log(ctx, level, "mail already quarantined", "quarantine_id", id, logKeyErr, reason, logKeyAttempt, attempts)
		return nil
	}
	id, err := j.p.store.PutQuarantine(ctx, &QuarantineItem{
		Mailbox: j.p.mb.Name, Key: j.key, Reason: reason, Attempts: attempts,
		Raw: j.raw, CreatedAt: j.p.opts.Now(),
	})
	if err != nil {
		err = fmt.Errorf("%s; writing the quarantine failed: %w", reason, err)
		j.retryLater(err)
		return err // logged by the caller (Run logs every Retry)
	}
	j.out.Record(stageQuarantine, "stored", "quarantine "+id+": "+reason)
	j.logger().Log(ctx, level, "mail quarantined", "quarantine_id", id, logKeyErr, reason, logKeyAttempt, attempts)
	if qkey != "" {
		if err := j.p.store.PutState(ctx, qkey, []byte(id)); err != nil && Code(err) != Unimplemented {
			j.logger().WarnContext(ctx, "cannot remember the quarantined key; a redelivery may be quarantined again", logKeyErr, err)
		}
	}
	return nil
}

// quarantineStatePrefix prefixes the store state entries (Store.PutState)
// remembering which mails are quarantined, so that a redelivered mail
// failing again adds no second quarantine item.
const quarantineStatePrefix = "mailcase/quarantined/"

// quarantineStateKey is the state key of the mail's quarantine record:
// the hex SHA-256 of its idempotency key, or of its bytes when it has none
// (unparseable mail).
func (j *job) quarantineStateKey() string {
	var sum [sha256.Size]byte
	if j.key != "" {
		sum = sha256.Sum256([]byte(j.key))
	} else {
		sum = sha256.Sum256(j.raw)
	}
	return quarantineStatePrefix + hex.EncodeToString(sum[:])
}

// quarantinedBefore returns the quarantine ID recorded under qkey. A store
// without state (Unimplemented) or failing to answer gives false: a second
// item is better than a lost mail. An item deleted from the quarantine by
// Reprocess is filed by then, so a redelivery is a duplicate before it
// gets here; one deleted by hand is not written again, which loses nothing
// since only a source that sets the mail aside itself is checked.
func (j *job) quarantinedBefore(ctx context.Context, qkey string) (string, bool) {
	if qkey == "" {
		return "", false
	}
	v, ok, err := j.p.store.GetState(ctx, qkey)
	if err != nil {
		if Code(err) != Unimplemented {
			j.logger().WarnContext(ctx, "cannot check whether the mail is already quarantined", logKeyErr, err)
		}
		return "", false
	}
	if !ok || len(v) == 0 {
		return "", false
	}
	return string(v), true
}
