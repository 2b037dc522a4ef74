package salesforcetest_test

import (
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"net/url"
	"strings"

	"github.com/emailcrm/emailcrm/adapters/salesforce/salesforcetest"
)

func Example() {
	s := salesforcetest.New(&salesforcetest.Options{ClientID: "id", ClientSecret: "secret"})
	defer s.Close()

	// Client credentials flow.
	resp, err := http.PostForm(s.URL()+"/services/oauth2/token", url.Values{
		"grant_type": {"client_credentials"}, "client_id": {"id"}, "client_secret": {"secret"},
	})
	if err != nil {
		log.Fatal(err)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		InstanceURL string `json:"instance_url"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()

	// Upsert a Case by its external ID.
	req, _ := http.NewRequest(http.MethodPatch, tok.InstanceURL+"/services/data/v62.0/sobjects/Case/EmailcrmKey__c/msg-1",
		strings.NewReader(`{"Subject":"Printer on fire","Origin":"Email"}`))
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		log.Fatal(err)
	}
	var res struct {
		ID      string `json:"id"`
		Created bool   `json:"created"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&res); err != nil {
		log.Fatal(err)
	}
	resp.Body.Close()

	rec, _ := s.Record("Case", res.ID)
	fmt.Println(resp.StatusCode, res.Created, rec["CaseNumber"], rec["Subject"], s.Calls())
	// Output: 201 true 00001000 Printer on fire 1
}
