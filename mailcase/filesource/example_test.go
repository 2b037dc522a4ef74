package filesource_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/mailcase/filesource"
	"github.com/emailcrm/emailcrm/mailcase/memstore"
)

// Import a directory of .eml files into a store, without sending anything
// about them (backlog import).
func ExampleOpenDir() {
	dir, err := os.MkdirTemp("", "import")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	for i, id := range []string{"a@customer.example", "b@customer.example"} {
		mail := fmt.Sprintf("From: ann@customer.example\r\nSubject: Case %d\r\nMessage-ID: <%s>\r\n\r\nHello\r\n", i, id)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("%02d.eml", i)), []byte(mail), 0o600); err != nil {
			log.Fatal(err)
		}
	}

	src, err := filesource.OpenDir(dir, &filesource.Options{Quiet: true})
	if err != nil {
		log.Fatal(err)
	}
	defer src.Close()
	store, err := memstore.OpenStore(&memstore.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	p, err := mailcase.NewPipeline(store, &mailcase.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		log.Fatal(err)
	}
	if err := p.Run(context.Background(), src); err != nil {
		log.Fatal(err)
	}
	done, _ := os.ReadDir(filepath.Join(dir, "done"))
	fmt.Println("cases created:", p.Stats().Created, "files done:", len(done))
	// Output: cases created: 2 files done: 2
}
