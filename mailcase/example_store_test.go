package mailcase_test

import (
	"context"
	"fmt"
	"log"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

func ExampleStore() {
	ctx := context.Background()
	store, err := memstore.OpenStore(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()

	contact, err := store.CreateContact(ctx, &mailcase.NewContact{Name: "Alice", Email: "Alice@Example.COM"})
	if err != nil {
		log.Fatal(err)
	}
	first := &mailcase.Email{
		IdempotencyKey: "support/<order-42@example.com>",
		Mailbox:        "support",
		MessageID:      "<order-42@example.com>",
		From:           mailcase.Address{Name: "Alice", Email: contact.Email},
		To:             []mailcase.Address{{Email: "support@shop.example"}},
		Subject:        "Where is my order?",
		Text:           "Order 42 has not arrived.",
	}
	c, err := store.CreateCase(ctx, &mailcase.NewCase{Subject: first.Subject, ContactID: contact.ID, Queue: "orders", First: first})
	if err != nil {
		log.Fatal(err)
	}
	// A reply refers to the first mail; the store finds its case.
	found, ok, err := store.LookupThread(ctx, "<order-42@example.com>")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(contact.Email)
	fmt.Println(c.Number, c.Status, c.Queue)
	fmt.Println(ok, found.ID == c.ID, found.Participants)
	// Output:
	// alice@example.com
	// 1000 new orders
	// true true [alice@example.com support@shop.example]
}

func ExampleStore_CreateCase_idempotent() {
	ctx := context.Background()
	store, _ := memstore.OpenStore(nil)
	defer store.Close()
	mail := &mailcase.Email{IdempotencyKey: "k1", MessageID: "m1@example.com",
		From: mailcase.Address{Email: "bob@example.com"}, Subject: "Hello"}
	a, _ := store.CreateCase(ctx, &mailcase.NewCase{First: mail})
	b, _ := store.CreateCase(ctx, &mailcase.NewCase{First: mail}) // a redelivery
	p, _, _ := store.LookupProcessed(ctx, "k1")
	fmt.Println(a.ID == b.ID, p.CaseID == a.ID)
	// Output: true true
}
