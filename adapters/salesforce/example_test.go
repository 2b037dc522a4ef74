package salesforce_test

import (
	"context"
	"fmt"
	"log"
	"os"

	"github.com/emailcrm/emailcrm/adapters/salesforce"
	"github.com/emailcrm/emailcrm/mailcase"
)

// ExampleOpenStore opens a store on an org with the client-credentials
// flow. It needs a real org, so it only compiles.
func ExampleOpenStore() {
	s, err := salesforce.OpenStore(&salesforce.Config{
		InstanceURL:  "https://acme.my.salesforce.com",
		ClientID:     os.Getenv(salesforce.EnvClientID),
		ClientSecret: os.Getenv(salesforce.EnvClientSecret),
		AutoAssign:   "FALSE", // keep the owner the router chose
		Origin:       "Email",
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	c, ok, err := s.FindCaseByNumber(context.Background(), "00001026")
	if err != nil {
		log.Fatal(err)
	}
	if ok {
		u, _ := s.CaseURL(context.Background(), c.ID)
		fmt.Println(c.Subject, u)
	}
	var d *salesforce.Store
	if s.As(&d) {
		used, max := d.Limits()
		fmt.Printf("API usage %d/%d\n", used, max)
	}
}

// Example_url opens a store by URL, with credentials from the environment.
func Example_url() {
	s, err := mailcase.OpenStore(context.Background(), "salesforce://acme.my.salesforce.com?auto_assign=FALSE&cache=10m")
	if err != nil {
		log.Fatal(err)
	}
	defer func() { _ = s.Close() }()
}

// ExampleCompileTemplate shows how lookup values are escaped.
func ExampleCompileTemplate() {
	t, err := salesforce.CompileTemplate("Email = '{{sender}}' OR Website LIKE '%{{domain}}'")
	if err != nil {
		log.Fatal(err)
	}
	vars := map[string]string{"sender": "o'brien@example.com", "domain": "ex_ample.com"}
	fmt.Println(t.Render(func(n string) string { return vars[n] }))
	_, err = salesforce.CompileTemplate("Email = {{sender}}")
	fmt.Println(err)
	// Output:
	// Email = 'o\'brien@example.com' OR Website LIKE '%ex\_ample.com'
	// salesforce: lookup template: {{sender}} outside a quoted string literal (write '{{sender}}')
}
