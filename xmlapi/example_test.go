package xmlapi_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
	"github.com/emailcrm/emailcrm/xmlapi"
)

func ExampleDecode() {
	req, err := xmlapi.Decode(strings.NewReader(`<request xmlns="urn:emailcrm:mailcase:v1" version="1">
	  <setPriority case="1042" priority="urgent"/>
	  <dispatch case="1042" queue="tier2"/>
	</request>`), nil)
	if err != nil {
		log.Fatal(err)
	}
	for _, a := range req.Actions {
		fmt.Println(a.XMLName.Local, a.Case, a.Priority+a.Queue)
	}
	// Output:
	// setPriority 1042 urgent
	// dispatch 1042 tier2
}

func ExampleHandler() {
	ctx := context.Background()
	store, err := memstore.OpenStore(nil)
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	h, err := xmlapi.NewHandler(store, &xmlapi.HandlerOptions{
		AllowedSenders: []string{"erp@ops.example.com"},
		Secret:         "s3cret",
		Now:            func() time.Time { return time.Date(2026, 12, 7, 10, 0, 30, 0, time.UTC) },
	})
	if err != nil {
		log.Fatal(err)
	}
	m := &mailcase.Message{
		ID:   "42@ops.example.com",
		From: mailcase.Address{Email: "erp@ops.example.com"},
		Text: `<request xmlns="urn:emailcrm:mailcase:v1"><secret>s3cret</secret>
		  <timestamp>2026-12-07T10:00:00Z</timestamp><nonce>7f3c9a0e</nonce>
		  <createCase queue="billing" priority="high"><subject>Invoice 42 disputed</subject></createCase>
		</request>`,
	}
	res, err := h.HandleStructured(ctx, &mailcase.Delivery{Mailbox: &mailcase.Mailbox{Name: "support"}, Message: m})
	if err != nil {
		log.Fatal(err)
	}
	c, _, err := store.GetCase(ctx, res.CaseID)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(res.Action, "|", c.Subject, "|", c.Queue, "|", c.Priority)
	// Output:
	// ran 1 actions | Invoice 42 disputed | billing | high
}
