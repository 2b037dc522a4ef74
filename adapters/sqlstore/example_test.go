package sqlstore_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/emailcrm/emailcrm/adapters/sqlstore"
	"github.com/emailcrm/emailcrm/mailcase"
)

// A store over a *sql.DB of your own: open SQLite with the durable DSN and
// file a case. The case number counts from 1000.
func ExampleOpenStore() {
	dir, _ := os.MkdirTemp("", "sqlstore-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	db, err := sql.Open("sqlite", sqlstore.SQLiteDSN(filepath.Join(dir, "cases.db")))
	if err != nil {
		log.Fatal(err)
	}
	defer db.Close()
	store, err := sqlstore.OpenStore(ctx, db, sqlstore.SQLite, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	first := &mailcase.Email{
		IdempotencyKey: "support\x00printer-1@example.com",
		MessageID:      "printer-1@example.com",
		From:           mailcase.Address{Name: "Alice", Email: "alice@example.com"},
		Subject:        "Printer on fire",
	}
	c, err := store.CreateCase(ctx, &mailcase.NewCase{Queue: "support", First: first})
	if err != nil {
		log.Fatal(err)
	}
	again, _ := store.CreateCase(ctx, &mailcase.NewCase{Queue: "support", First: first}) // a redelivery
	fmt.Println(c.Number, c.Subject, c.Participants)
	fmt.Println("redelivery filed on case", again.Number)
	// Output:
	// 1000 Printer on fire [alice@example.com]
	// redelivery filed on case 1000
}

// Opening by URL, as the mailcase command does with --store.
func ExampleOpenURL() {
	dir, _ := os.MkdirTemp("", "sqlstore-example")
	defer os.RemoveAll(dir)
	ctx := context.Background()

	// Also: mailcase.OpenStore(ctx, url) once this package is imported;
	// "postgres://user@host/db" and "mysql://user:pass@host:3306/db" work alike.
	store, err := sqlstore.OpenURL(ctx, "sqlite://"+filepath.Join(dir, "cases.db"), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	ok, _ := store.AcquireLease(ctx, "mailbox:support", "worker-1", 30e9)
	fmt.Println("lease granted:", ok)
	// Output:
	// lease granted: true
}
