package cli

// The tests run the commands in process against SQLite files, as the
// mailcase command (examples/mailcase, which links sqlstore) does.
import _ "github.com/emailcrm/emailcrm/adapters/sqlstore"
