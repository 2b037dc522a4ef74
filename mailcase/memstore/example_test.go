package memstore_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

func ExampleOpenStore() {
	ctx := context.Background()
	clock := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	store, err := memstore.OpenStore(&memstore.Options{
		Now:     func() time.Time { return clock },
		URLBase: "https://crm.example/cases/",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	// Seed the directory, as a demo or a test would.
	acc, _ := store.CreateAccount(ctx, &mailcase.NewAccount{Name: "Acme", Domains: []string{"acme.example"}, SupportLevel: "gold"})
	_, _ = store.CreateEmployee(ctx, &mailcase.NewEmployee{Name: "Agent", Email: "agent@shop.example", Active: true})

	c, err := store.CreateCase(ctx, &mailcase.NewCase{
		AccountID: acc.ID,
		First: &mailcase.Email{IdempotencyKey: "support/1", MessageID: "<1@acme.example>", Subject: "Broken widget",
			From: mailcase.Address{Email: "Bob@Acme.example"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	u, _ := store.CaseURL(ctx, c.ID)
	_, isEmployee, _ := store.FindEmployee(ctx, "AGENT@shop.example")
	fmt.Println(c.Number, c.Subject, c.CreatedAt.Format(time.RFC3339))
	fmt.Println(u)
	fmt.Println(c.Participants, isEmployee)
	// Output:
	// 1000 Broken widget 2026-05-01T09:00:00Z
	// https://crm.example/cases/case-3
	// [bob@acme.example] true
}

func ExampleURLOpener() {
	// Importing memstore registers the "mem" scheme.
	store, err := mailcase.OpenStore(context.Background(), "mem://")
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	_, err = mailcase.OpenStore(context.Background(), "mem://?persist=1")
	fmt.Println(mailcase.Code(err))
	// Output: InvalidArgument
}
