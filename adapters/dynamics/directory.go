package dynamics

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/emailcrm/emailcrm/adapters/internal/crmlookup"
	"github.com/emailcrm/emailcrm/mailcase/driver"
)

// dirData is the emailcrm_data column of contacts and accounts.
type dirData struct {
	Name         string `json:"name,omitempty"` // the exact display name
	Placeholder  bool   `json:"placeholder,omitempty"`
	Internal     bool   `json:"internal,omitempty"`
	SupportLevel string `json:"support_level,omitempty"`
}

type contactRow struct {
	ID        string `json:"contactid"`
	FullName  string `json:"fullname"`
	FirstName string `json:"firstname"`
	LastName  string `json:"lastname"`
	Email1    string `json:"emailaddress1"`
	Email2    string `json:"emailaddress2"`
	Email3    string `json:"emailaddress3"`
	Parent    string `json:"_parentcustomerid_value"`
	Data      string `json:"emailcrm_data"`
}

const contactSelect = "contactid,fullname,firstname,lastname,emailaddress1,emailaddress2,emailaddress3,_parentcustomerid_value,emailcrm_data"

func (r *contactRow) contact() driver.Contact {
	var d dirData
	_ = json.Unmarshal([]byte(r.Data), &d)
	name := r.FullName
	if d.Name != "" {
		name = d.Name
	} else if name == "" {
		name = strings.TrimSpace(r.FirstName + " " + r.LastName)
	}
	return driver.Contact{ID: strings.ToLower(r.ID), Name: name, Email: strings.ToLower(firstNonEmpty(r.Email1, r.Email2, r.Email3)),
		AccountID: strings.ToLower(r.Parent), Placeholder: d.Placeholder, Internal: d.Internal, SupportLevel: d.SupportLevel}
}

// FindContacts implements driver.Directory: contacts whose emailaddress1,
// 2 or 3 equals email (eq, never a LIKE pattern).
func (s *Store) FindContacts(ctx context.Context, email string) ([]driver.Contact, error) {
	return crmlookup.Get(s.lcache, ctx, "contacts:"+email, func() ([]driver.Contact, error) {
		q := Quote(email)
		var out struct {
			Value []contactRow `json:"value"`
		}
		if err := s.c.getJSON(ctx, query("contacts", "$select", contactSelect, "$filter",
			"emailaddress1 eq "+q+" or emailaddress2 eq "+q+" or emailaddress3 eq "+q, "$orderby", "createdon asc"), &out); err != nil {
			return nil, err
		}
		res := []driver.Contact{}
		for i := range out.Value {
			c := out.Value[i].contact()
			c.Email = email
			s.rememberContact(c.ID, contactRef{email: email, placeholder: c.Placeholder})
			res = append(res, c)
		}
		return res, nil
	})
}

// CreateContact implements driver.Directory: a contact with lastname (the
// display name, or the address), emailaddress1 and the parent account.
func (s *Store) CreateContact(ctx context.Context, nc *driver.NewContact) (driver.Contact, error) {
	if err := ctx.Err(); err != nil {
		return driver.Contact{}, err
	}
	full := firstNonEmpty(nc.Name, nc.Email)
	first, last := "", full
	if i := strings.LastIndexByte(full, ' '); i > 0 {
		first, last = full[:i], full[i+1:]
	}
	body := map[string]any{"lastname": truncate(last, 50), "emailaddress1": nc.Email,
		"emailcrm_data": string(must(json.Marshal(dirData{Name: nc.Name, Placeholder: nc.Placeholder, Internal: nc.Internal, SupportLevel: nc.SupportLevel})))}
	if first != "" {
		body["firstname"] = truncate(first, 50)
	}
	if nc.AccountID != "" {
		if !validGUID(nc.AccountID) {
			return driver.Contact{}, errInvalid("account id " + nc.AccountID + " is not a GUID")
		}
		body["parentcustomerid_account@odata.bind"] = "/accounts(" + nc.AccountID + ")"
	}
	resp, err := s.c.call(ctx, &request{method: http.MethodPost, path: "contacts", body: body})
	if err != nil {
		return driver.Contact{}, err
	}
	s.lcache.Forget("contacts:" + nc.Email)
	c := driver.Contact{ID: strings.ToLower(entityID(resp.header)), Name: nc.Name, Email: nc.Email, AccountID: nc.AccountID,
		Placeholder: nc.Placeholder, Internal: nc.Internal, SupportLevel: nc.SupportLevel}
	s.rememberContact(c.ID, contactRef{email: nc.Email, placeholder: nc.Placeholder})
	return c, nil
}

// FindAccounts implements driver.Directory: contains() on the domain
// column (Config.AccountDomainField, wildcards escaped), then an exact
// comparison of the normalised entries.
func (s *Store) FindAccounts(ctx context.Context, domain string) ([]driver.Account, error) {
	domain = crmlookup.NormDomain(domain)
	return crmlookup.Get(s.lcache, ctx, "accounts:"+domain, func() ([]driver.Account, error) {
		df := s.cfg.AccountDomainField
		var out struct {
			Value []map[string]any `json:"value"`
		}
		if err := s.c.getJSON(ctx, query("accounts", "$select", "accountid,name,emailcrm_data,"+df, "$filter",
			"contains("+df+","+QuoteLike(domain)+")", "$orderby", "createdon asc"), &out); err != nil {
			return nil, err
		}
		res := []driver.Account{}
		for _, r := range out.Value {
			v, _ := r[df].(string)
			ds := crmlookup.SplitDomains(v)
			if !slices.Contains(ds, domain) {
				continue
			}
			var d dirData
			if m, _ := r["emailcrm_data"].(string); m != "" {
				_ = json.Unmarshal([]byte(m), &d)
			}
			id, _ := r["accountid"].(string)
			name, _ := r["name"].(string)
			res = append(res, driver.Account{ID: strings.ToLower(id), Name: name, Domains: ds, SupportLevel: d.SupportLevel})
		}
		return res, nil
	})
}

// FindEmployee implements driver.Directory: the systemuser with
// internalemailaddress email (Active is !isdisabled).
func (s *Store) FindEmployee(ctx context.Context, email string) (driver.Employee, error) {
	list, err := crmlookup.Get(s.lcache, ctx, "employee:"+email, func() ([]driver.Employee, error) {
		var out struct {
			Value []struct {
				ID       string `json:"systemuserid"`
				FullName string `json:"fullname"`
				First    string `json:"firstname"`
				Last     string `json:"lastname"`
				Disabled bool   `json:"isdisabled"`
			} `json:"value"`
		}
		if err := s.c.getJSON(ctx, query("systemusers", "$select", "systemuserid,fullname,firstname,lastname,internalemailaddress,isdisabled",
			"$filter", "internalemailaddress eq "+Quote(email), "$top", "1"), &out); err != nil {
			return nil, err
		}
		res := []driver.Employee{}
		for _, r := range out.Value {
			res = append(res, driver.Employee{ID: strings.ToLower(r.ID), Name: firstNonEmpty(r.FullName, strings.TrimSpace(r.First+" "+r.Last)),
				Email: email, Active: !r.Disabled})
		}
		return res, nil
	})
	if err != nil {
		return driver.Employee{}, err
	}
	if len(list) == 0 {
		return driver.Employee{}, errNotFound("employee")
	}
	return list[0], nil
}

// CreateAccount implements driver.DirectoryWriter: an account with name
// and the domains in the domain column ("; "-separated).
func (s *Store) CreateAccount(ctx context.Context, a *driver.NewAccount) (driver.Account, error) {
	if err := ctx.Err(); err != nil {
		return driver.Account{}, err
	}
	body := map[string]any{"name": truncate(a.Name, 160), s.cfg.AccountDomainField: strings.Join(a.Domains, "; "),
		"emailcrm_data": string(must(json.Marshal(dirData{SupportLevel: a.SupportLevel})))}
	resp, err := s.c.call(ctx, &request{method: http.MethodPost, path: "accounts", body: body})
	if err != nil {
		return driver.Account{}, err
	}
	for _, d := range a.Domains {
		s.lcache.Forget("accounts:" + d)
	}
	return driver.Account{ID: strings.ToLower(entityID(resp.header)), Name: a.Name, Domains: slices.Clone(a.Domains), SupportLevel: a.SupportLevel}, nil
}

// CreateEmployee implements driver.DirectoryWriter: a systemuser (seeding
// and demos; a real environment provisions users from Entra ID).
func (s *Store) CreateEmployee(ctx context.Context, e *driver.NewEmployee) (driver.Employee, error) {
	if _, err := s.FindEmployee(ctx, e.Email); err == nil {
		return driver.Employee{}, errExists("employee exists")
	} else if errorCode(err) != driver.NotFound {
		return driver.Employee{}, err
	}
	first, last, _ := strings.Cut(firstNonEmpty(e.Name, e.Email), " ")
	if last == "" {
		first, last = "", first
	}
	resp, err := s.c.call(ctx, &request{method: http.MethodPost, path: "systemusers", body: map[string]any{
		"firstname": first, "lastname": last, "internalemailaddress": e.Email, "isdisabled": !e.Active}})
	if err != nil {
		return driver.Employee{}, err
	}
	s.lcache.Forget("employee:" + e.Email)
	return driver.Employee{ID: strings.ToLower(entityID(resp.header)), Name: e.Name, Email: e.Email, Active: e.Active}, nil
}
