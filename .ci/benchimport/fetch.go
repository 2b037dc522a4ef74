package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
)

// fetch is the raw IMAP yardstick: log in over implicit TLS, select INBOX
// and read every mail's bytes with one UID FETCH 1:* BODY.PEEK[], streamed.
// The password comes from $BENCH_IMAP_PASSWORD.
func fetch(addr, caFile, user string) error {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca) {
		return fmt.Errorf("%s: no certificate", caFile)
	}
	c, err := imapclient.DialTLS(addr, &imapclient.Options{TLSConfig: &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}})
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.Login(user, os.Getenv("BENCH_IMAP_PASSWORD")).Wait(); err != nil {
		return err
	}
	if _, err := c.Select("INBOX", &imap.SelectOptions{ReadOnly: true}).Wait(); err != nil {
		return err
	}
	sec := &imap.FetchItemBodySection{Peek: true}
	cmd := c.Fetch(imap.UIDSet{imap.UIDRange{Start: 1, Stop: 0}}, &imap.FetchOptions{UID: true, BodySection: []*imap.FetchItemBodySection{sec}})
	mails, bytes := 0, int64(0)
	for {
		msg := cmd.Next()
		if msg == nil {
			break
		}
		for {
			item := msg.Next()
			if item == nil {
				break
			}
			if b, ok := item.(imapclient.FetchItemDataBodySection); ok {
				n, err := io.Copy(io.Discard, b.Literal)
				if err != nil {
					return err
				}
				bytes += n
			}
		}
		mails++
	}
	if err := cmd.Close(); err != nil {
		return err
	}
	fmt.Printf("%d mails, %d bytes\n", mails, bytes)
	return c.Logout().Wait()
}
