package salesforce

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/emailcrm/emailcrm/adapters/internal/crmlookup"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// Contacts keep the placeholder and internal marks in EmailcrmFlags__c, a
// comma-separated text field.
func hasFlag(flags, f string) bool {
	for _, x := range strings.Split(flags, ",") {
		if strings.TrimSpace(x) == f {
			return true
		}
	}
	return false
}

func contactName(rec map[string]any) string {
	return strings.TrimSpace(recStr(rec, "FirstName") + " " + recStr(rec, "LastName"))
}

// FindContacts implements driver.Directory: SOQL on Contact.Email.
func (s *Store) FindContacts(ctx context.Context, email string) ([]driver.Contact, error) {
	return cached(s, ctx, "contacts:"+email, func() ([]driver.Contact, error) {
		sl := s.cfg.SupportLevelField
		recs, err := s.query(ctx, "SELECT Id, FirstName, LastName, Email, AccountId, EmailcrmFlags__c, "+sl+
			" FROM Contact WHERE Email = "+QuoteSOQL(email)+" ORDER BY CreatedDate ASC, Id ASC")
		if err != nil {
			return nil, err
		}
		out := make([]driver.Contact, 0, len(recs))
		for _, r := range recs {
			flags := recStr(r, "EmailcrmFlags__c")
			c := driver.Contact{
				ID: recStr(r, "Id"), Name: contactName(r), Email: strings.ToLower(recStr(r, "Email")),
				AccountID: recStr(r, "AccountId"), Placeholder: hasFlag(flags, "placeholder"),
				Internal: hasFlag(flags, "internal"), SupportLevel: recStr(r, sl),
			}
			s.rememberContact(c.ID, contactRef{email: c.Email, placeholder: c.Placeholder})
			out = append(out, c)
		}
		return out, nil
	})
}

// CreateContact implements driver.Directory. The name goes to LastName
// (required by Salesforce; the address when the name is empty).
func (s *Store) CreateContact(ctx context.Context, nc *driver.NewContact) (driver.Contact, error) {
	if err := ctx.Err(); err != nil {
		return driver.Contact{}, err
	}
	last := nc.Name
	if last == "" {
		last = nc.Email
	}
	var flags []string
	if nc.Placeholder {
		flags = append(flags, "placeholder")
	}
	if nc.Internal {
		flags = append(flags, "internal")
	}
	f := map[string]any{"LastName": cut(last, 80), "Email": nc.Email}
	setIf(f, "AccountId", nc.AccountID)
	setIf(f, "EmailcrmFlags__c", strings.Join(flags, ","))
	setIf(f, s.cfg.SupportLevelField, nc.SupportLevel)
	id, err := s.create(ctx, "Contact", f)
	if err != nil {
		return driver.Contact{}, err
	}
	s.forget("contacts:" + nc.Email)
	c := driver.Contact{ID: id, Name: strings.TrimSpace(cut(last, 80)), Email: nc.Email, AccountID: nc.AccountID,
		Placeholder: nc.Placeholder, Internal: nc.Internal, SupportLevel: nc.SupportLevel}
	s.rememberContact(id, contactRef{email: nc.Email, placeholder: nc.Placeholder})
	return c, nil
}

// create inserts one record and returns its Id.
func (s *Store) create(ctx context.Context, obj string, fields map[string]any) (string, error) {
	body, err := jsonBody(fields)
	if err != nil {
		return "", err
	}
	var out struct {
		ID string `json:"id"`
	}
	if err := s.c.doJSON(ctx, &request{method: http.MethodPost, path: "sobjects/" + obj, body: body}, &out); err != nil {
		return "", err
	}
	return out.ID, nil
}

// normDomain normalises a domain or URL (crmlookup.NormDomain).
func normDomain(s string) string { return crmlookup.NormDomain(s) }

// splitDomains splits a domain field value into normalised domains.
func splitDomains(v string) []string { return crmlookup.SplitDomains(v) }

// FindAccounts implements driver.Directory: SOQL LIKE on the account
// domain field (Config.AccountDomainField), then an exact comparison of
// the normalised entries.
func (s *Store) FindAccounts(ctx context.Context, domain string) ([]driver.Account, error) {
	domain = normDomain(domain)
	return cached(s, ctx, "accounts:"+domain, func() ([]driver.Account, error) {
		df, sl := s.cfg.AccountDomainField, s.cfg.SupportLevelField
		recs, err := s.query(ctx, "SELECT Id, Name, "+df+", "+sl+" FROM Account WHERE "+df+" LIKE '%"+
			EscapeSOQLLike(domain)+"%' ORDER BY CreatedDate ASC, Id ASC")
		if err != nil {
			return nil, err
		}
		out := []driver.Account{}
		for _, r := range recs {
			ds := splitDomains(recStr(r, df))
			if !slices.Contains(ds, domain) {
				continue
			}
			out = append(out, driver.Account{ID: recStr(r, "Id"), Name: recStr(r, "Name"), Domains: ds, SupportLevel: recStr(r, sl)})
		}
		return out, nil
	})
}

// FindEmployee implements driver.Directory: SOQL on User.Email (an active
// User is preferred; an inactive one is returned with Active false, as the
// contract asks).
func (s *Store) FindEmployee(ctx context.Context, email string) (driver.Employee, error) {
	list, err := cached(s, ctx, "employee:"+email, func() ([]driver.Employee, error) {
		recs, err := s.query(ctx, "SELECT Id, FirstName, LastName, Email, IsActive FROM User WHERE Email = "+QuoteSOQL(email)+
			" ORDER BY IsActive DESC, CreatedDate ASC LIMIT 1")
		if err != nil {
			return nil, err
		}
		out := []driver.Employee{}
		for _, r := range recs {
			active, _ := r["IsActive"].(bool)
			out = append(out, driver.Employee{ID: recStr(r, "Id"), Name: contactName(r), Email: strings.ToLower(recStr(r, "Email")), Active: active})
		}
		return out, nil
	})
	if err != nil {
		return driver.Employee{}, err
	}
	if len(list) == 0 {
		return driver.Employee{}, errNotFound("employee")
	}
	return list[0], nil
}

// CreateAccount implements driver.DirectoryWriter (seeding): the domains
// joined with ", " in the domain field.
func (s *Store) CreateAccount(ctx context.Context, a *driver.NewAccount) (driver.Account, error) {
	if err := ctx.Err(); err != nil {
		return driver.Account{}, err
	}
	f := map[string]any{"Name": a.Name}
	setIf(f, s.cfg.AccountDomainField, strings.Join(a.Domains, ", "))
	setIf(f, s.cfg.SupportLevelField, a.SupportLevel)
	id, err := s.create(ctx, "Account", f)
	if err != nil {
		return driver.Account{}, err
	}
	for _, d := range a.Domains {
		s.forget("accounts:" + d)
	}
	return driver.Account{ID: id, Name: a.Name, Domains: slices.Clone(a.Domains), SupportLevel: a.SupportLevel}, nil
}

// CreateEmployee implements driver.DirectoryWriter (seeding): a User with
// Username = Email. On a real org, set Config.EmployeeProfileID (the
// required Alias, TimeZoneSidKey, LocaleSidKey, EmailEncodingKey and
// LanguageLocaleKey are then filled with defaults).
func (s *Store) CreateEmployee(ctx context.Context, e *driver.NewEmployee) (driver.Employee, error) {
	if _, err := s.FindEmployee(ctx, e.Email); err == nil {
		return driver.Employee{}, errExists("an employee with that address exists")
	} else if errorCode(err) != driver.NotFound {
		return driver.Employee{}, err
	}
	last := e.Name
	if last == "" {
		last = e.Email
	}
	f := map[string]any{"Username": e.Email, "Email": e.Email, "LastName": cut(last, 80), "IsActive": e.Active}
	if s.cfg.EmployeeProfileID != "" {
		alias := strings.SplitN(e.Email, "@", 2)[0]
		f["ProfileId"] = s.cfg.EmployeeProfileID
		f["Alias"] = cut(alias, 8)
		f["TimeZoneSidKey"] = "GMT"
		f["LocaleSidKey"] = "en_US"
		f["EmailEncodingKey"] = "UTF-8"
		f["LanguageLocaleKey"] = "en_US"
	}
	id, err := s.create(ctx, "User", f)
	if err != nil {
		return driver.Employee{}, err
	}
	s.forget("employee:" + e.Email)
	return driver.Employee{ID: id, Name: strings.TrimSpace(cut(last, 80)), Email: e.Email, Active: e.Active}, nil
}

// jsonBody encodes a record for a request.
func jsonBody(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, errInternal("encoding a record: " + err.Error())
	}
	return b, nil
}
