package sqlstore

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"syscall"

	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"

	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Error is the error type of sqlstore for outcomes it decides itself (a
// missing record, a closed store). Database errors are returned as the
// database driver made them and classified by their codes.
type Error struct {
	Code driver.ErrorCode
	Msg  string
}

func (e *Error) Error() string { return "sqlstore: " + e.Msg }

func errorf(code driver.ErrorCode, format string, args ...any) error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// errClosed is returned by every method after Close.
var errClosed = &Error{Code: driver.FailedPrecondition, Msg: "store is closed"}

// SQLite primary result codes (the low byte of an extended code).
const (
	sqlitePerm       = 3
	sqliteBusy       = 5
	sqliteLocked     = 6
	sqliteNoMem      = 7
	sqliteReadOnly   = 8
	sqliteIOErr      = 10
	sqliteCorrupt    = 11
	sqliteFull       = 13
	sqliteCantOpen   = 14
	sqliteTooBig     = 18
	sqliteConstraint = 19
	sqliteMismatch   = 20
	sqliteAuth       = 23
	sqliteNotADB     = 26
)

// classify maps an error of any of the three database drivers (or of
// database/sql, the network or the context) to a driver.ErrorCode.
func classify(err error) driver.ErrorCode {
	if err == nil {
		return driver.OK
	}
	var se *Error
	if errors.As(err, &se) {
		return se.Code
	}
	switch {
	case errors.Is(err, context.Canceled):
		return driver.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		return driver.DeadlineExceeded
	case errors.Is(err, sql.ErrNoRows):
		return driver.NotFound
	case errors.Is(err, sql.ErrConnDone), errors.Is(err, sqldriver.ErrBadConn),
		errors.Is(err, mysql.ErrInvalidConn), errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return driver.Unavailable
	case errors.Is(err, syscall.ENOSPC):
		return driver.ResourceExhausted
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pgCode(pe.Code)
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return mysqlCode(me.Number)
	}
	var le *sqlite.Error
	if errors.As(err, &le) {
		return sqliteCode(le.Code())
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return driver.Unavailable
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) || pgconn.SafeToRetry(err) {
		return driver.Unavailable
	}
	return driver.Unknown
}

// pgCode maps a PostgreSQL SQLSTATE.
func pgCode(state string) driver.ErrorCode {
	switch state {
	case "23505": // unique_violation
		return driver.AlreadyExists
	case "40001", "40P01", "55P03", "57P01", "57P02", "57P03", "58000", "58030":
		// serialization failure, deadlock, lock not available, admin/crash
		// shutdown, cannot connect now, system and I/O errors
		return driver.Unavailable
	case "53100": // disk_full
		return driver.ResourceExhausted
	case "25006": // read_only_sql_transaction (a hot standby)
		return driver.Unavailable
	case "57014": // query_canceled (statement timeout)
		return driver.DeadlineExceeded
	}
	if len(state) < 2 {
		return driver.Unknown
	}
	switch state[:2] {
	case "08": // connection exception
		return driver.Unavailable
	case "53": // insufficient resources
		return driver.ResourceExhausted
	case "22", "23": // data exception, integrity constraint
		return driver.InvalidArgument
	case "28", "42": // authorization; syntax or access rule
		if state == "42501" || state[:2] == "28" {
			return driver.PermissionDenied
		}
		return driver.Internal
	}
	return driver.Unknown
}

// mysqlCode maps a MySQL / MariaDB error number.
func mysqlCode(n uint16) driver.ErrorCode {
	switch n {
	case 1062, 1586: // duplicate entry
		return driver.AlreadyExists
	case 1205, 1213, 1040, 1053, 1077, 1078, 1079, 1080, 1152, 1158, 1159, 1160, 1161, 1927, 2002, 2003, 2006, 2013, 1836, 1792:
		// lock wait timeout, deadlock, too many connections, shutdown,
		// aborted/interrupted connections, read-only replica
		return driver.Unavailable
	case 1021, 1041, 1114, 1037, 1038: // disk full, out of memory, table full
		return driver.ResourceExhausted
	case 1044, 1045, 1142, 1143, 1227, 1290: // access denied, read-only server
		return driver.PermissionDenied
	case 1406, 1366, 1264, 1265, 1292, 1048, 1452, 1451, 1153:
		// data too long, bad value, out of range, null, foreign key, packet too large
		return driver.InvalidArgument
	case 1146, 1054, 1064: // missing table or column, syntax: a schema or program bug
		return driver.Internal
	}
	return driver.Unknown
}

// sqliteCode maps an SQLite (extended) result code.
func sqliteCode(code int) driver.ErrorCode {
	switch code & 0xff {
	case sqliteBusy, sqliteLocked:
		return driver.Unavailable
	case sqliteFull, sqliteNoMem:
		return driver.ResourceExhausted
	case sqliteReadOnly, sqlitePerm, sqliteAuth:
		return driver.PermissionDenied
	case sqliteCantOpen, sqliteNotADB:
		return driver.FailedPrecondition
	case sqliteIOErr:
		return driver.Unavailable
	case sqliteCorrupt:
		return driver.Internal
	case sqliteConstraint:
		if code == 2067 || code == 1555 { // SQLITE_CONSTRAINT_UNIQUE, _PRIMARYKEY
			return driver.AlreadyExists
		}
		return driver.InvalidArgument
	case sqliteTooBig, sqliteMismatch:
		return driver.InvalidArgument
	}
	return driver.Unknown
}

// connectionLost reports whether err means the connection (and perhaps the
// server) went away: a terminated backend, a reset or refused connection.
// Other connections of the pool are then likely dead too.
func connectionLost(err error) bool {
	if err == nil {
		return false
	}
	switch {
	case errors.Is(err, sqldriver.ErrBadConn), errors.Is(err, mysql.ErrInvalidConn),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, syscall.ECONNREFUSED):
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == "57P01" || pe.Code == "57P02" || pe.Code == "57P03" || strings.HasPrefix(pe.Code, "08")
	}
	var me *mysql.MySQLError
	if errors.As(err, &me) {
		return me.Number == 2006 || me.Number == 2013 || me.Number == 1053 || me.Number == 1927
	}
	var ne net.Error
	return errors.As(err, &ne) || pgconn.SafeToRetry(err)
}
