package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// txFunc is one write operation run inside a transaction. It must be
// re-runnable: after a failed batch it runs again alone, so it assigns its
// results only from what it reads and writes in tx.
type txFunc func(ctx context.Context, tx *sql.Tx) error

type writeOp struct {
	ctx  context.Context
	fn   txFunc
	done chan error // buffered: the committer never blocks on a gone caller
}

// commitError marks a failed COMMIT: the outcome of the batch is unknown,
// so its members are not run again (a non-idempotent write could then be
// applied twice); each gets the error and the portable layer retries the
// idempotent ones.
type commitError struct{ err error }

func (e *commitError) Error() string { return e.err.Error() }
func (e *commitError) Unwrap() error { return e.err }

// committer is the group-commit writer: concurrent writers hand it their
// operations and it runs up to maxBatch of them in one transaction, so
// durable filing pays one commit (one fsync) per batch instead of one per
// mail. Each caller returns only after the transaction holding its
// operation committed. When an operation fails, the batch is rolled back
// and each member runs again alone, so one bad item never fails the others.
//
// A batch forms naturally: operations that arrive while a commit is in
// progress wait for the next one; wait optionally lingers for more.
type committer struct {
	db       *sql.DB
	txOpts   *sql.TxOptions
	maxBatch int
	wait     time.Duration
	timeout  time.Duration
	log      *slog.Logger
	onErr    func(error) // sees every failed transaction's error

	ops  chan *writeOp
	quit chan struct{}
	wg   sync.WaitGroup

	mu     sync.RWMutex // guards closed against sends in flight
	closed bool

	batches, committed, retried atomic.Int64
	// gen counts lost connections (see connLost); committers drop their
	// connection when it was taken before the last loss.
	gen atomic.Int64
}

func newCommitter(db *sql.DB, txOpts *sql.TxOptions, workers, maxBatch int, wait, timeout time.Duration, log *slog.Logger, onErr func(error)) *committer {
	c := &committer{
		db: db, txOpts: txOpts, maxBatch: maxBatch, wait: wait, timeout: timeout, log: log, onErr: onErr,
		ops:  make(chan *writeOp, workers*maxBatch),
		quit: make(chan struct{}),
	}
	c.wg.Add(workers)
	for range workers {
		go c.run()
	}
	return c
}

// do runs fn in a (possibly shared) transaction and returns once that
// transaction committed or failed. If ctx ends first, do returns ctx's
// error and the outcome is unknown (the operation may still commit).
func (c *committer) do(ctx context.Context, fn txFunc) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	op := &writeOp{ctx: ctx, fn: fn, done: make(chan error, 1)}
	c.mu.RLock()
	if c.closed {
		c.mu.RUnlock()
		return errClosed
	}
	select {
	case c.ops <- op:
	case <-ctx.Done():
		c.mu.RUnlock()
		return ctx.Err()
	}
	c.mu.RUnlock()
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// connLost tells the committers that a connection was lost (a server
// restart or failover kills them all): each takes a fresh connection for
// its next batch.
func (c *committer) connLost() { c.gen.Add(1) }

// close stops accepting operations, lets the committers finish the queued
// ones and waits for them.
func (c *committer) close() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.mu.Unlock()
	close(c.quit)
	c.wg.Wait()
}

func (c *committer) run() {
	defer c.wg.Done()
	w := &txRunner{c: c}
	defer w.drop()
	batch := make([]*writeOp, 0, c.maxBatch)
	for {
		var first *writeOp
		select {
		case first = <-c.ops:
		case <-c.quit:
			for { // no sender remains (closed is set): drain what is queued
				select {
				case op := <-c.ops:
					w.exec([]*writeOp{op})
				default:
					return
				}
			}
		}
		batch = append(batch[:0], first)
		batch = c.gather(batch)
		w.exec(batch)
		clear(batch)
	}
}

// gather adds queued operations to batch up to maxBatch, lingering up to
// wait for more when wait is positive.
func (c *committer) gather(batch []*writeOp) []*writeOp {
	var timer <-chan time.Time
	if c.wait > 0 {
		t := time.NewTimer(c.wait)
		defer t.Stop()
		timer = t.C
	}
	for len(batch) < c.maxBatch {
		select {
		case op := <-c.ops:
			batch = append(batch, op)
			continue
		default:
		}
		if timer == nil {
			return batch
		}
		select {
		case op := <-c.ops:
			batch = append(batch, op)
		case <-timer:
			return batch
		case <-c.quit:
			return batch
		}
	}
	return batch
}

// txRunner is one committer goroutine's state: its own connection, so a
// burst of reads on the pool never queues the writer everybody waits for.
// The connection is dropped after any failure (it may be broken) and taken
// again from the pool for the next batch.
type txRunner struct {
	c    *committer
	conn *sql.Conn
	gen  int64 // c.gen when conn was taken
}

func (w *txRunner) drop() {
	if w.conn != nil {
		w.conn.Close()
		w.conn = nil
	}
}

func (w *txRunner) exec(batch []*writeOp) {
	c := w.c
	live := batch[:0:0]
	for _, op := range batch {
		if err := op.ctx.Err(); err != nil {
			op.done <- err // the caller has gone; nothing was written
			continue
		}
		live = append(live, op)
	}
	if len(live) == 0 {
		return
	}
	for len(live) > 0 {
		ctx, cancel := live[0].ctx, context.CancelFunc(func() {})
		if len(live) > 1 { // a shared transaction must not end with one caller's context
			ctx, cancel = context.WithTimeout(context.Background(), c.timeout)
		}
		bad, err := w.runTx(ctx, live)
		cancel()
		if err == nil {
			for _, op := range live {
				op.done <- nil
			}
			return
		}
		var ce *commitError
		if errors.As(err, &ce) || bad < 0 || len(live) == 1 {
			for _, op := range live {
				op.done <- unwrapCommit(err)
			}
			return
		}
		// Member bad failed and the batch was rolled back: run it alone for
		// its own outcome, then the others again together.
		c.retried.Add(1)
		c.log.Debug("group commit: a write failed its batch; running it alone", "size", len(live), "err", err)
		op := live[bad]
		live = append(live[:bad:bad], live[bad+1:]...)
		if err := op.ctx.Err(); err != nil {
			op.done <- err
		} else {
			_, err := w.runTx(op.ctx, []*writeOp{op})
			op.done <- unwrapCommit(err)
		}
		kept := live[:0]
		for _, op := range live {
			if err := op.ctx.Err(); err != nil {
				op.done <- err
				continue
			}
			kept = append(kept, op)
		}
		live = kept
	}
}

func unwrapCommit(err error) error {
	var ce *commitError
	if errors.As(err, &ce) {
		return ce.err
	}
	return err
}

// runTx runs ops in one transaction. When an operation fails it returns
// its index (the transaction is rolled back); other failures return -1. A
// failed COMMIT is a *commitError.
func (w *txRunner) runTx(ctx context.Context, ops []*writeOp) (bad int, err error) {
	c := w.c
	bad = -1
	defer func() {
		if err != nil {
			w.drop()
			c.onErr(err)
		}
	}()
	if g := c.gen.Load(); w.conn != nil && w.gen != g {
		w.drop() // a connection was lost since this one was taken: it may be dead too
	}
	if w.conn == nil {
		w.gen = c.gen.Load()
		if w.conn, err = c.db.Conn(ctx); err != nil {
			return -1, err
		}
	}
	tx, err := w.conn.BeginTx(ctx, c.txOpts)
	if err != nil {
		return -1, err
	}
	for i, op := range ops {
		if err := op.fn(ctx, tx); err != nil {
			_ = tx.Rollback()
			return i, err
		}
	}
	if err := tx.Commit(); err != nil {
		return -1, &commitError{err: err}
	}
	c.batches.Add(1)
	c.committed.Add(int64(len(ops)))
	return -1, nil
}
