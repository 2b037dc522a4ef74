package cli

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"slices"

	"github.com/emailcrm/emailcrm/adapters/dynamics"
	"github.com/emailcrm/emailcrm/adapters/dynamics/dynamicstest"
	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/routing"
)

// openDemoCRM starts the in-process fake of a CRM (--crm) and opens a store
// on it; calls reports the API requests it has received so far.
func openDemoCRM(crm string) (store *mailcase.Store, label string, calls func() int, stop func(), err error) {
	switch crm {
	case "dynamics":
		srv := dynamicstest.New(&dynamicstest.Options{ClientID: "demo-client", ClientSecret: "demo-secret"})
		for _, e := range []string{"incident", "email", "contact", "account"} {
			srv.AddAttribute(e, "emailcrm_data", 1048576)
		}
		srv.AddAttribute("systemuser", "firstname", 64)
		srv.AddAttribute("systemuser", "lastname", 64)
		s, err := dynamics.OpenStore(&dynamics.Config{InstanceURL: srv.URL(), TokenURL: srv.TokenURL(),
			ClientID: "demo-client", ClientSecret: "demo-secret", AllowInsecureHTTP: true}, nil)
		if err != nil {
			srv.Close()
			return nil, "", nil, nil, err
		}
		return s, "dynamics (in-process dynamicstest fake)", srv.Calls, srv.Close, nil
	}
	return nil, "", nil, nil, usageError("--crm %q: want dynamics", crm)
}

// demoMails are the built-in sample mails, processed in name order.
//
//go:embed demo/*.eml demo/rules.yaml
var demoMails embed.FS

// demoMailbox is the support mailbox of the demo (and of explain). Its
// block list drops a newsletter as exception mail: list mail is
// otherwise handled as a person's mail that is never answered
// automatically.
func demoMailbox() mailcase.Mailbox {
	return mailcase.Mailbox{
		Name:           "support",
		Address:        "support@ourcompany.example",
		DefaultQueue:   "support",
		BlockAddresses: []string{"news@vendor.example"},
	}
}

// demoAuthServID is the demo's receiving server, whose
// Authentication-Results fields the pipeline believes.
const demoAuthServID = "mx.ourcompany.example"

// demoFile is one embedded sample mail.
type demoFile struct {
	name string
	raw  []byte
}

// loadDemoMails returns the embedded sample mails in name order.
func loadDemoMails() ([]demoFile, error) {
	entries, err := fs.ReadDir(demoMails, "demo")
	if err != nil {
		return nil, fmt.Errorf("read embedded demo mails: %w", err)
	}
	out := make([]demoFile, 0, len(entries))
	for _, e := range entries { // ReadDir sorts by name
		if path.Ext(e.Name()) != ".eml" {
			continue
		}
		raw, err := demoMails.ReadFile(path.Join("demo", e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read embedded demo mail %s: %w", e.Name(), err)
		}
		out = append(out, demoFile{name: e.Name(), raw: raw})
	}
	return out, nil
}

// demoDirectory is what the demo seeds into the store before the mails.
type demoDirectory struct {
	Accounts  []mailcase.Account
	Contacts  []mailcase.Contact
	Employees []mailcase.Employee
	// Skipped names records the store could not create (a store that is
	// not a directory writer has no accounts or employees).
	Skipped []string
}

// seedDemoDirectory creates the demo's account, contacts and employee
// unless the store already has them, so seeding a persistent store twice
// creates nothing new. Accounts and employees need a store that can write
// its directory (Store.CanWriteDirectory); otherwise they are skipped.
func seedDemoDirectory(ctx context.Context, store *mailcase.Store) (demoDirectory, error) {
	var dir demoDirectory
	accountID := ""
	if store.CanWriteDirectory() {
		acc, err := ensureAccount(ctx, store, &mailcase.NewAccount{
			Name: "Northwind Traders", Domains: []string{"northwind.example"}, SupportLevel: "gold",
		})
		if err != nil {
			return dir, err
		}
		dir.Accounts = append(dir.Accounts, acc)
		accountID = acc.ID
		emp, err := ensureEmployee(ctx, store, &mailcase.NewEmployee{
			Name: "Jamie Doe", Email: "jamie.doe@ourcompany.example", Active: true,
		})
		if err != nil {
			return dir, err
		}
		dir.Employees = append(dir.Employees, emp)
	} else {
		dir.Skipped = append(dir.Skipped, "account Northwind Traders", "employee Jamie Doe")
	}
	for _, nc := range []mailcase.NewContact{
		{Name: "Anna Berg", Email: "anna.berg@northwind.example", AccountID: accountID},
		{Name: "Carlos Mendes", Email: "carlos@fabrikam.example"},
		{Name: "Jürgen Weiß", Email: "j.weiss@contoso.example"},
	} {
		c, err := ensureContact(ctx, store, &nc)
		if err != nil {
			return dir, err
		}
		dir.Contacts = append(dir.Contacts, c)
	}
	return dir, nil
}

// names returns the display names of the directory's records.
func (d demoDirectory) names() names {
	nm := names{}
	for _, a := range d.Accounts {
		nm[a.ID] = a.Name
	}
	for _, c := range d.Contacts {
		nm[c.ID] = c.Name
	}
	return nm
}

func ensureAccount(ctx context.Context, store *mailcase.Store, na *mailcase.NewAccount) (mailcase.Account, error) {
	have, err := store.FindAccounts(ctx, na.Domains[0])
	if err != nil {
		return mailcase.Account{}, fmt.Errorf("seed account %s: %w", na.Name, err)
	}
	if len(have) > 0 {
		return have[0], nil
	}
	a, err := store.CreateAccount(ctx, na)
	if err != nil {
		return mailcase.Account{}, fmt.Errorf("seed account %s: %w", na.Name, err)
	}
	return a, nil
}

func ensureEmployee(ctx context.Context, store *mailcase.Store, ne *mailcase.NewEmployee) (mailcase.Employee, error) {
	e, ok, err := store.FindEmployee(ctx, ne.Email)
	if err != nil {
		return e, fmt.Errorf("seed employee %s: %w", ne.Name, err)
	}
	if ok {
		return e, nil
	}
	e, err = store.CreateEmployee(ctx, ne)
	if err != nil {
		return e, fmt.Errorf("seed employee %s: %w", ne.Name, err)
	}
	return e, nil
}

func ensureContact(ctx context.Context, store *mailcase.Store, nc *mailcase.NewContact) (mailcase.Contact, error) {
	have, err := store.FindContacts(ctx, nc.Email)
	if err != nil {
		return mailcase.Contact{}, fmt.Errorf("seed contact %s: %w", nc.Name, err)
	}
	if len(have) > 0 {
		return have[0], nil
	}
	c, err := store.CreateContact(ctx, nc)
	if err != nil {
		return mailcase.Contact{}, fmt.Errorf("seed contact %s: %w", nc.Name, err)
	}
	return c, nil
}

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fset := newFlagSet("demo", "[--crm embedded|salesforce|dynamics] [--store URL] [--config FILE [--mailbox NAME]]", stderr)
	crm := fset.String("crm", demoCRMEmbedded, "the CRM the demo files into: embedded (the --store, by default a fresh "+
		"SQLite file), salesforce (an in-process fake org; the demo prints the REST calls each mail cost) or dynamics "+
		"(an in-process fake Dataverse; the demo prints the API calls each mail cost)")
	storeURL := fset.String("store", "", "store URL (default: a fresh store that is removed at exit)")
	cfgPath := fset.String("config", "", "configuration file (YAML): the threading, routing and structured-mail "+
		"settings of its mailbox apply to the demo's mailbox (the demo keeps its own mailbox and store)")
	mbName := fset.String("mailbox", "", "with --config, the mailbox of the file whose settings apply (default: its only one)")
	pos, err := parseFlags(fset, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("demo takes no arguments (got %q)", pos)
	}
	if err := checkDemoCRM(*crm, *storeURL); err != nil {
		return err
	}
	var plugins *pluginConfig
	if *cfgPath != "" {
		cfg, err := loadConfig(*cfgPath)
		if err != nil {
			return err
		}
		m, err := cfg.mailbox(*mbName)
		if err != nil {
			return usageError("%w", err)
		}
		plugins = m.plugins
	}
	mails, err := loadDemoMails()
	if err != nil {
		return err
	}

	url := *storeURL
	var tmp string
	if url == "" || *crm != demoCRMEmbedded {
		tmp, err = os.MkdirTemp("", "mailcase-demo-")
		if err != nil {
			return fmt.Errorf("create the demo's temporary directory: %w", err)
		}
		defer os.RemoveAll(tmp)
	}
	// store keeps the cases; outboxStore the outgoing mail: the same store
	// but for a CRM, which pairs with a local SQLite outbox.
	var store, outboxStore *mailcase.Store
	var sf *demoSalesforce
	var calls func() int
	switch *crm {
	case demoCRMDynamics:
		var stop func()
		store, url, calls, stop, err = openDemoCRM(*crm)
		if err != nil {
			return err
		}
		defer stop()
		defer store.Close()
		// Dynamics keeps no outbox: a local SQLite file does.
		outboxStore, err = openStore(ctx, demoStoreURL(tmp))
		if err != nil {
			return err
		}
		defer outboxStore.Close()
	case demoCRMSalesforce:
		sf, err = startDemoSalesforce(ctx, tmp)
		if err != nil {
			return err
		}
		defer sf.Close()
		store, outboxStore = sf.crm, sf.local
		url = sf.URL()
	default:
		if url == "" {
			url = demoStoreURL(tmp)
		}
		store, err = openStore(ctx, url)
		if err != nil {
			return err
		}
		defer store.Close()
		outboxStore = store
		url = redactURL(url)
	}

	dir, err := seedDemoDirectory(ctx, store)
	if err != nil {
		return err
	}
	nm := dir.names()
	mb := demoMailbox()
	fmt.Fprintf(stdout, "mailcase demo: %d sample mails into mailbox %q (%s) of store %s\n\n",
		len(mails), mb.Name, mb.Address, url)
	printDirectory(stdout, dir)
	fmt.Fprintf(stdout, "Mailbox %s: default queue %s, block list %v\n\n", mb.Name, mb.DefaultQueue, mb.BlockAddresses)

	rules, err := embeddedDemoRules(plugins)
	if err != nil {
		return err
	}
	log := commandLogger(fset, stderr)
	p, err := buildPipeline(store, wireConfig{Mailbox: mb, Logger: log,
		TrustedAuthServIDs: []string{demoAuthServID}, Rules: rules, Plugins: plugins, Outbox: outboxStore})
	if err != nil {
		return err
	}
	defer p.Close()

	var rest []restSummary
	if sf != nil {
		sf.take() // seeding is not a mail's cost
	}
	for i, m := range mails {
		before := 0
		if calls != nil {
			before = calls()
		}
		res, perr := p.Process(ctx, m.raw, nil)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fmt.Fprintf(stdout, "[%d/%d] %s\n", i+1, len(mails), m.name)
		if calls != nil {
			fmt.Fprintf(stdout, "  API calls: %d\n", calls()-before)
		}
		printResult(stdout, res, perr, nm)
		if sf != nil {
			calls := sf.take()
			printRESTCalls(stdout, calls)
			action := ""
			if res != nil {
				action = string(res.Outcome.Action)
			}
			rest = append(rest, summarizeCalls(i+1, m.name, action, calls))
		}
		fmt.Fprintln(stdout)
	}

	fmt.Fprintln(stdout, "Summary")
	writeStats(stdout, "  ", p.Stats())
	fmt.Fprintln(stdout)
	if sf != nil {
		printRESTSummary(stdout, rest)
	}

	list, err := listCases(ctx, store, &mailcase.ListOptions{})
	switch {
	case errors.Is(err, mailcase.ErrUnimplemented):
		fmt.Fprintln(stdout, "(this store cannot list its cases)")
	case err != nil:
		return err
	default:
		fmt.Fprintln(stdout, "Cases in the store")
		printCases(stdout, list, nm)
	}
	fmt.Fprintln(stdout)
	if sf != nil {
		sf.take()
	}
	return runDemoOutgoing(ctx, store, outboxStore, stdout, log, sf)
}

// printDirectory prints the seeded directory.
func printDirectory(w io.Writer, dir demoDirectory) {
	fmt.Fprintln(w, "Directory")
	for _, a := range dir.Accounts {
		fmt.Fprintf(w, "  account   %-22s domains %v, support level %s\n", a.Name, a.Domains, orDash(a.SupportLevel))
	}
	for _, c := range dir.Contacts {
		acc := ""
		if i := slices.IndexFunc(dir.Accounts, func(a mailcase.Account) bool { return a.ID == c.AccountID }); i >= 0 {
			acc = ", account " + dir.Accounts[i].Name
		}
		fmt.Fprintf(w, "  contact   %-22s %s%s\n", c.Name, c.Email, acc)
	}
	for _, e := range dir.Employees {
		fmt.Fprintf(w, "  employee  %-22s %s\n", e.Name, e.Email)
	}
	for _, s := range dir.Skipped {
		fmt.Fprintf(w, "  (skipped %s: the store cannot create it)\n", s)
	}
	fmt.Fprintln(w)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// embeddedDemoRules returns the demo's embedded routing rules (demo/rules.yaml),
// unless the configuration file (--config) names a rules file, which then
// wins (nil).
func embeddedDemoRules(plugins *pluginConfig) (*routing.Config, error) {
	if plugins != nil && plugins.Routing.Rules != "" {
		return nil, nil
	}
	data, err := demoMails.ReadFile("demo/rules.yaml")
	if err != nil {
		return nil, fmt.Errorf("read embedded demo rules: %w", err)
	}
	return routing.ParseConfig("demo/rules.yaml (embedded)", data)
}
