package events_test

import (
	"errors"
	"io"
	"log"
	"net/http"
	"os"

	"github.com/emailcrm/emailcrm/mailcase/events"
)

// A webhook receiver that acts once on each event: the Verifier rejects
// replays within the tolerance and recognises retries by event ID.
func ExampleVerifier() {
	v := events.NewVerifier([]byte(os.Getenv("CRM_WEBHOOK_SECRET")), nil)
	act := func(e events.Event) error { log.Printf("%s %s", e.Kind, e.CaseID); return nil }
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/emailcrm", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "too large", http.StatusRequestEntityTooLarge)
			return
		}
		e, err := v.Verify(r.Header.Get(events.SignatureHeader), body)
		switch {
		case err == nil:
			if err := act(e); err != nil {
				v.Forget(e.ID) // the sender's retry is acted on
				http.Error(w, "try again", http.StatusInternalServerError)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		case errors.Is(err, events.ErrDuplicate), errors.Is(err, events.ErrReplayed):
			w.WriteHeader(http.StatusNoContent) // seen: not acted on again
		case errors.Is(err, events.ErrVerifierFull):
			http.Error(w, "busy", http.StatusServiceUnavailable)
		default:
			http.Error(w, "bad signature", http.StatusUnauthorized)
		}
	})
	srv := &http.Server{Addr: "127.0.0.1:8443", Handler: mux}
	_ = srv // srv.ListenAndServeTLS(certFile, keyFile)
}
