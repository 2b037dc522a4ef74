package routing_test

import (
	"context"
	"fmt"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/routing"
)

// Routing rules read from YAML: the sender's domain decides the queue, the
// keywords are scored and explained.
func ExampleParseConfig() {
	cfg, err := routing.ParseConfig("rules.yaml", []byte(`
queues: [general, billing, technical, vip]
default_queue: general
senders:
  - domain: importantcustomer.example
    queue: vip
    priority: high
keywords:
  threshold: 2
  sets:
    - queue: billing
      words: [invoice, refund*]
    - queue: technical
      words: [error, crash*, エラー]
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	r, err := routing.Compile(cfg, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range []*mailcase.Message{
		{From: mailcase.Address{Email: "ann@example.com"}, Subject: "Refund for invoice 42", Text: "Please refund me."},
		{From: mailcase.Address{Email: "bob@importantcustomer.example"}, Subject: "Crash", Text: "The app crashed."},
		{From: mailcase.Address{Email: "ken@example.jp"}, Subject: "エラー", Text: "起動時にエラーが出ます"},
		{From: mailcase.Address{Email: "joe@example.com"}, Subject: "Hello", Text: "Just saying hi."},
	} {
		route, err := r.Route(context.Background(), &mailcase.Delivery{Message: m})
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s: queue=%s priority=%q rule=%s scores=%v\n", m.From.Email, route.Queue, route.Priority, route.Rule, route.Scores)
	}
	// Output:
	// ann@example.com: queue=billing priority="" rule=keywords:billing scores=[{billing 5}]
	// bob@importantcustomer.example: queue=vip priority="high" rule=domain:importantcustomer.example scores=[{technical 3}]
	// ken@example.jp: queue=technical priority="" rule=keywords:technical scores=[{technical 3}]
	// joe@example.com: queue=general priority="" rule=default scores=[]
}

// A configuration built in Go, with a customer hook that raises the
// priority of customers with a support contract.
func ExampleCompile() {
	cfg := &routing.Config{
		Queues:       []string{"general", "vip"},
		DefaultQueue: "general",
		Customers: []routing.CustomerRule{
			{SupportLevel: "platinum", Effect: routing.Effect{Queue: "vip"}},
		},
	}
	hook := func(ctx context.Context, c routing.Customer) (routing.Effect, error) {
		if c.SupportLevel != "" {
			return routing.Effect{Priority: mailcase.PriorityHigh}, nil
		}
		return routing.Effect{}, nil
	}
	r, err := routing.Compile(cfg, &routing.Options{CustomerHook: hook})
	if err != nil {
		fmt.Println(err)
		return
	}
	route, err := r.Route(context.Background(), &mailcase.Delivery{
		Message: &mailcase.Message{From: mailcase.Address{Email: "ann@bigcorp.example"}, Subject: "Help"},
		Sender: mailcase.SenderMatch{Kind: mailcase.SenderContact,
			Contact: &mailcase.Contact{ID: "c-1"}, Account: &mailcase.Account{ID: "a-1", SupportLevel: "Platinum"}},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(route.Queue, route.Priority, route.Fired)
	fmt.Println(route.Reason)
	// Output:
	// vip high [customer:hook customer:platinum]
	// queue "vip" by customer:platinum (contact c-1 has support level platinum); priority "high" by customer:hook (customer hook for contact c-1)
}

// Training a classifier and using its predictions as routing actions.
func ExampleTrain() {
	examples := []routing.Example{
		{Category: "billing", Subject: "Invoice wrong", Body: "The invoice amount is wrong, please refund."},
		{Category: "billing", Subject: "Charged twice", Body: "My card was charged twice, I want a refund."},
		{Category: "billing", Subject: "Refund", Body: "Refund the payment of my invoice please."},
		{Category: "technical", Subject: "App crash", Body: "The app crashes with an error on start."},
		{Category: "technical", Subject: "Error 500", Body: "I get an error when I save, the app crashes."},
		{Category: "technical", Subject: "Bug", Body: "Since the update the app shows an error."},
	}
	nb, err := routing.Train(examples, &routing.TrainOptions{MinCount: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	preds, err := nb.Classify(context.Background(), routing.Document{Subject: "Refund", Body: "I was charged twice on my invoice."})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s %.2f\n", preds[0].Category, preds[0].Confidence)
	// Output:
	// billing 1.00
}
