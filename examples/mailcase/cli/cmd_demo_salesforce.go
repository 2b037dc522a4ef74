package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/emailcrm/emailcrm/adapters/salesforce"
	"github.com/emailcrm/emailcrm/adapters/salesforce/salesforcetest"
	"github.com/emailcrm/emailcrm/mailcase"
)

// The CRMs `mailcase demo --crm` files into.
const (
	demoCRMEmbedded   = "embedded"   // the default: the embedded SQL store (or --store)
	demoCRMSalesforce = "salesforce" // an in-process salesforcetest fake org
	demoCRMDynamics   = "dynamics"   // an in-process dynamicstest fake Dataverse
)

// demoSalesforce is the demo's Salesforce: a fake org served on loopback
// in this process, the salesforce driver over it, and the local SQLite
// store that keeps what a CRM store has no place for (the outbox). This is
// the pairing the mailcase/driver package describes for a CRM driver
// without an Outbox.
type demoSalesforce struct {
	fake *salesforcetest.Server
	// crm is the case store: the salesforce driver over the fake.
	crm *mailcase.Store
	// local keeps the outbox (a temporary SQLite file).
	local *mailcase.Store
	// mark is the length of the fake's request log at the last take.
	mark int
}

// demoSalesforceFields are the custom fields the salesforce package
// documentation asks an org admin to create, plus the standard fields and
// object (Case.ParentId, Task) the fake lacks. EmailcrmKey__c of Case and
// EmailMessage and Account.Website are in the fake already.
var demoSalesforceFields = []struct {
	obj, name string
	n         int
	ext       bool
}{
	{"Case", "ParentId", 18, false},
	{"Case", "EmailcrmStatus__c", 40, false},
	{"Case", "EmailcrmQueue__c", 255, false},
	{"Case", "EmailcrmOwner__c", 255, false},
	{"Case", "EmailcrmData__c", 131072, false},
	{"EmailMessage", "EmailcrmData__c", 131072, false},
	{"Contact", "EmailcrmFlags__c", 255, false},
	{"Contact", "EmailcrmSupportLevel__c", 255, false},
	{"Account", "EmailcrmSupportLevel__c", 255, false},
	{"Task", "Subject", 255, false},
	{"Task", "Status", 40, false},
	{"Task", "TaskSubtype", 40, false},
	{"Task", "ActivityDate", 40, false},
	{"Task", "Description", 32000, false},
	{"Task", "WhoId", 18, false},
	{"Task", "WhatId", 18, false},
	{"Task", "EmailcrmKey__c", 80, true},
	{"Task", "EmailcrmData__c", 131072, false},
}

// The fake's consumer key and secret. Not secrets: the org lives as long
// as the command.
const (
	demoSFClientID     = "mailcase-demo"
	demoSFClientSecret = "mailcase-demo-secret"
)

// startDemoSalesforce starts the fake org and opens the salesforce driver
// over it, and the local outbox store in dir.
func startDemoSalesforce(ctx context.Context, dir string) (*demoSalesforce, error) {
	fake := salesforcetest.New(&salesforcetest.Options{ClientID: demoSFClientID, ClientSecret: demoSFClientSecret})
	for _, f := range demoSalesforceFields {
		fake.AddField(f.obj, f.name, f.n, f.ext)
	}
	crm, err := salesforce.OpenStore(&salesforce.Config{
		InstanceURL: fake.URL(), ClientID: demoSFClientID, ClientSecret: demoSFClientSecret,
		AllowInsecureHTTP: true, AutoAssign: "FALSE", Origin: "Email",
	}, nil)
	if err != nil {
		fake.Close()
		return nil, fmt.Errorf("demo Salesforce: %w", err)
	}
	local, err := openStore(ctx, demoStoreURL(dir))
	if err == nil && !local.CanOutbox() {
		_ = local.Close()
		err = errors.New("the local store keeps no outbox")
	}
	if err != nil {
		_ = crm.Close()
		fake.Close()
		return nil, fmt.Errorf("demo Salesforce: local outbox store: %w", err)
	}
	return &demoSalesforce{fake: fake, crm: crm, local: local}, nil
}

// Close closes both stores and stops the fake.
func (d *demoSalesforce) Close() error {
	err := errors.Join(d.crm.Close(), d.local.Close())
	d.fake.Close()
	return err
}

// URL describes the org for the demo's first line.
func (d *demoSalesforce) URL() string {
	return "salesforce (an in-process salesforcetest org at " + d.fake.URL() + "; outbox in a local SQLite file)"
}

// take returns the requests the fake received since the last take.
func (d *demoSalesforce) take() []salesforcetest.Call {
	log := d.fake.Log()
	if d.mark > len(log) {
		d.mark = 0
	}
	out := log[d.mark:]
	d.mark = len(log)
	return out
}

// emailMessage describes the EmailMessage the fake holds for a
// Message-ID (in angle brackets, as Salesforce keeps it).
func (d *demoSalesforce) emailMessage(msgID string) string {
	for _, r := range d.fake.Records("EmailMessage") {
		if r["MessageIdentifier"] == msgID {
			return fmt.Sprintf("EmailMessage %v, Incoming %v, Status %v, MessageIdentifier %v, FromAddress %v, ToAddress %v",
				r["Id"], r["Incoming"], r["Status"], r["MessageIdentifier"], r["FromAddress"], r["ToAddress"])
		}
	}
	return "no EmailMessage with MessageIdentifier " + msgID
}

// restCall is one request as the demo prints it.
type restCall struct {
	method, path, note string
	// filing is a write (the mail's Case, EmailMessage and files), as
	// opposed to a read (a lookup) or a token request.
	filing, token bool
}

var soqlFrom = regexp.MustCompile(`(?i)\bFROM\s+(\w+)`)

func describeCall(c salesforcetest.Call) restCall {
	rc := restCall{method: c.Method, path: c.Path}
	switch {
	case strings.HasSuffix(c.Path, "/services/oauth2/token"):
		rc.token, rc.note = true, "token"
	case c.Method == "GET":
		if q, err := url.ParseQuery(c.RawQuery); err == nil {
			if m := soqlFrom.FindStringSubmatch(q.Get("q")); m != nil {
				rc.note = "SOQL on " + m[1]
			}
		}
	case strings.HasSuffix(c.Path, "/composite"):
		// A composite request files when one of its subrequests writes;
		// one that only reads (the duplicate check) is a lookup.
		var body struct {
			Subs []struct {
				Method string `json:"method"`
				Ref    string `json:"referenceId"`
			} `json:"compositeRequest"`
		}
		_ = json.Unmarshal(c.Body, &body)
		var refs []string
		for _, sub := range body.Subs {
			if sub.Method != "GET" {
				rc.filing = true
			}
			refs = append(refs, sub.Method+" "+sub.Ref)
		}
		rc.note = plural(len(body.Subs), "subrequest")
		if len(refs) > 0 {
			rc.note += ": " + strings.Join(refs, ", ")
		}
	default:
		rc.filing = true
	}
	return rc
}

// printRESTCalls prints what one step cost: the count, how many of them
// filed, and each request.
func printRESTCalls(w io.Writer, calls []salesforcetest.Call) {
	var rcs []restCall
	filing := 0
	for _, c := range calls {
		rc := describeCall(c)
		if rc.filing {
			filing++
		}
		rcs = append(rcs, rc)
	}
	field(w, "rest", fmt.Sprintf("%s (%d filing, %d lookup)", plural(len(rcs), "REST call"), filing, len(rcs)-filing))
	for _, rc := range rcs {
		line := rc.method + " " + rc.path
		if rc.note != "" {
			line += "  (" + rc.note + ")"
		}
		field(w, "", "  "+line)
	}
}

// restSummary is one mail's line of the demo's closing table.
type restSummary struct {
	n       int
	name    string
	action  string
	calls   int
	filings []string
}

// printRESTSummary prints the REST calls each mail cost, in the form
// "mail 4 (appended): 3 REST calls, filing 1: POST /services/data/v62.0/composite".
func printRESTSummary(w io.Writer, rows []restSummary) {
	fmt.Fprintln(w, "REST calls per mail (salesforcetest)")
	for _, r := range rows {
		fil := "filing 0"
		if len(r.filings) > 0 {
			fil = fmt.Sprintf("filing %d: %s", len(r.filings), strings.Join(r.filings, ", "))
		}
		fmt.Fprintf(w, "  mail %d (%s, %s): %s, %s\n", r.n, r.name, orDash(r.action), plural(r.calls, "REST call"), fil)
	}
	fmt.Fprintln(w)
}

func summarizeCalls(n int, name, action string, calls []salesforcetest.Call) restSummary {
	r := restSummary{n: n, name: name, action: action}
	for _, c := range calls {
		rc := describeCall(c)
		if rc.token {
			continue
		}
		r.calls++
		if rc.filing {
			r.filings = append(r.filings, rc.method+" "+rc.path)
		}
	}
	return r
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// demoCRMs are the values of demo --crm.
var demoCRMs = []string{demoCRMEmbedded, demoCRMSalesforce, demoCRMDynamics}

func checkDemoCRM(crm, storeURL string) error {
	switch {
	case !slices.Contains(demoCRMs, crm):
		return usageError("demo --crm %q: want one of %s", crm, strings.Join(demoCRMs, ", "))
	case crm != demoCRMEmbedded && storeURL != "":
		return usageError("demo --crm %s runs against its own in-process org: --store does not apply", crm)
	}
	return nil
}
