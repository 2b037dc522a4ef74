package dynamics_test

import (
	"fmt"
	"log"

	"github.com/emailcrm/emailcrm/adapters/dynamics"
)

// ExampleCompileTemplate shows how lookup values are escaped in an OData
// $filter template.
func ExampleCompileTemplate() {
	t, err := dynamics.CompileTemplate("emailaddress1 eq '{{sender}}' or contains(websiteurl,'{{domain}}')")
	if err != nil {
		log.Fatal(err)
	}
	in := &dynamics.LookupInput{Sender: "o'brien@ex_ample.com"}
	fmt.Println(t.Render(in.Var))
	_, err = dynamics.CompileTemplate("emailaddress1 eq {{sender}}")
	fmt.Println(err != nil)
	// Output:
	// emailaddress1 eq 'o''brien@ex_ample.com' or contains(websiteurl,'ex[_]ample.com')
	// true
}

// ExampleOpenStore opens a store on a Dataverse environment (it needs the
// network, so it has no output).
func ExampleOpenStore() {
	s, err := dynamics.OpenStore(&dynamics.Config{
		InstanceURL: "https://contoso.crm4.dynamics.com",
		Tenant:      "contoso.onmicrosoft.com",
		ClientID:    "00000000-0000-0000-0000-000000000001",
		// ClientSecret from a secret store, never from source code.
		ClientSecret: "…",
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()
}
