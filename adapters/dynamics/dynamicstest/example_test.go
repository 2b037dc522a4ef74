package dynamicstest_test

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"strings"

	"github.com/emailcrm/emailcrm/adapters/dynamics/dynamicstest"
)

func Example() {
	s := dynamicstest.New(&dynamicstest.Options{ClientID: "app", ClientSecret: "secret", Tenant: "contoso"})
	defer s.Close()
	contact := s.Insert("contacts", map[string]any{"lastname": "Lee", "emailaddress1": "ann@example.com"})

	// Client credentials flow against the Entra ID v2.0 endpoint.
	resp, err := http.PostForm(s.TokenURL(), url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"app"}, "client_secret": {"secret"},
		"scope": {s.URL() + "/.default"},
	})
	if err != nil {
		log.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()

	// Upsert a case by its alternate key; create only.
	req, _ := http.NewRequest(http.MethodPatch, s.URL()+"/api/data/v9.2/incidents(emailcrm_key='msg-1')",
		strings.NewReader(`{"title":"Printer on fire","caseorigincode":2,"customerid_contact@odata.bind":"/contacts(`+contact+`)"}`))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("If-None-Match", "*")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()

	// An upsert by alternate key answers the key form of the entity id.
	fmt.Println(resp.StatusCode, strings.TrimPrefix(resp.Header.Get("OData-EntityId"), s.URL()))
	rec := s.Records("incidents")[0]
	fmt.Println(rec["title"], rec["_customerid_value"] == contact, s.Calls())
	// Output:
	// 204 /api/data/v9.2/incidents(emailcrm_key='msg-1')
	// Printer on fire true 1
}
