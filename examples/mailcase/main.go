package main

import (
	"context"
	"os"

	"github.com/emailcrm/emailcrm/examples/mailcase/cli"

	// The store drivers offered to --store (mem:// is always there).
	_ "github.com/emailcrm/emailcrm/adapters/dynamics"   // dynamics:// (credentials from DYNAMICS_* variables)
	_ "github.com/emailcrm/emailcrm/adapters/salesforce" // salesforce:// (credentials from SALESFORCE_* variables)
	_ "github.com/emailcrm/emailcrm/adapters/sqlstore"   // sqlite://, postgres://, mysql://
)

func main() { os.Exit(cli.Main(context.Background(), os.Args[1:])) }
