package routing_test

import (
	"bytes"
	"errors"
	"os"
	"testing"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/routing"
)

// FuzzParseConfig feeds arbitrary bytes to the configuration parser and
// compiler: they must return a router or an ErrInvalidConfig error, never
// panic, and a compiled router must route a mail.
func FuzzParseConfig(f *testing.F) {
	for _, p := range []string{"testdata/rules.yaml", "testdata/rules.json"} {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(keywordsYAML))
	f.Add([]byte("queues: [a, b@c]\n"))
	f.Add([]byte("{}"))
	f.Add([]byte("keywords: {sets: [{queue: default, words: ['*', 'a*b', {text: x, weight: -1}]}]}\nqueues: [default]"))
	f.Add([]byte("queues: [default]\nsenders: [{domain: '*.x', queue: default}, {address: 'a@b', domain: c}]"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := routing.ParseConfig("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, routing.ErrInvalidConfig) {
				t.Fatalf("ParseConfig error does not match ErrInvalidConfig: %v", err)
			}
			return
		}
		if cfg.Classifier != nil {
			cfg.Classifier.Model = "" // no model files from fuzz input
		}
		r, err := routing.Compile(cfg, nil)
		if err != nil {
			if !errors.Is(err, routing.ErrInvalidConfig) {
				t.Fatalf("Compile error does not match ErrInvalidConfig: %v", err)
			}
			return
		}
		got, err := r.Route(t.Context(), &mailcase.Delivery{Message: &mailcase.Message{
			From: mailcase.Address{Email: "a@x.example"}, Subject: "invoice error", Text: string(data)}})
		if err != nil {
			t.Fatal(err)
		}
		if got.Queue == "" {
			t.Fatal("empty queue")
		}
	})
}

// FuzzScore routes arbitrary subjects and bodies against keyword sets that
// include arbitrary keywords: no panic, a queue always chosen, and the
// scores ordered best first.
func FuzzScore(f *testing.F) {
	f.Add("Invoice", "refund please", "invoice")
	f.Add("エラー", "アプリでエラーが発生", "エラー")
	f.Add("", "\xff\xfe invalid utf8 \x00", "\xff")
	f.Add("ＩＮＶＯＩＣＥ", "Straße café ﬁle", "strasse")
	f.Add("a", "aaaaaaaaaaaaaaaa", "*a*")
	f.Add("x", "x\u0301\u0301\u0301 ガ ｶﾞ", "カ")
	f.Fuzz(func(t *testing.T, subject, body, keyword string) {
		cfg := &routing.Config{
			Queues: []string{"default", "a", "b"},
			Keywords: &routing.KeywordConfig{Threshold: 1, Sets: []routing.KeywordSet{
				{Effect: routing.Effect{Queue: "a"}, Words: []routing.Keyword{{Text: keyword}, {Text: "invoice"}}, Negative: []routing.Keyword{{Text: "newsletter"}}},
				{Effect: routing.Effect{Queue: "b"}, Words: []routing.Keyword{{Text: "error"}, {Text: "エラー"}, {Text: "refund*"}}},
			}},
		}
		r, err := routing.Compile(cfg, nil)
		if err != nil {
			if !errors.Is(err, routing.ErrInvalidConfig) {
				t.Fatal(err)
			}
			return
		}
		got, err := r.Route(t.Context(), &mailcase.Delivery{Message: &mailcase.Message{Subject: subject, Text: body}})
		if err != nil {
			t.Fatal(err)
		}
		if got.Queue == "" || got.Rule == "" {
			t.Fatalf("incomplete route %+v", got)
		}
		for i := 1; i < len(got.Scores); i++ {
			if got.Scores[i].Score > got.Scores[i-1].Score {
				t.Fatalf("scores not best first: %+v", got.Scores)
			}
		}
	})
}

// FuzzLoadModel feeds arbitrary bytes to the model loader.
func FuzzLoadModel(f *testing.F) {
	nb, err := routing.Train(labelled(40, 1), nil)
	if err != nil {
		f.Fatal(err)
	}
	var buf bytes.Buffer
	if err := nb.Save(&buf); err != nil {
		f.Fatal(err)
	}
	f.Add(buf.Bytes())
	f.Add([]byte(`{"format":"emailcrm.routing.naive-bayes","version":1,"alpha":1,"categories":["a","b"],"documents":[1,0],"features":{"x":[4294967295,0]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := routing.LoadModel(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, routing.ErrInvalidModel) {
				t.Fatalf("error does not match ErrInvalidModel: %v", err)
			}
			return
		}
		p, err := m.Classify(t.Context(), routing.Document{Subject: "x", Body: string(data)})
		if err != nil || len(p) < 2 {
			t.Fatalf("Classify = %v, %v", p, err)
		}
	})
}
