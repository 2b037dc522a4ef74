package routing_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/emailcrm/emailcrm/mailcase"
	"github.com/emailcrm/emailcrm/routing"
)

func TestLoadFile_YAML(t *testing.T) {
	r, err := routing.LoadFile("testdata/rules.yaml", nil)
	require.NoError(t, err)
	got := route(t, r, mail{from: "x@importantcustomer.example", to: []string{"billing@company.example"}, subject: "crash"})
	assert.Equal(t, "vip", got.Queue)
	assert.Equal(t, mailcase.PriorityHigh, got.Priority)
	assert.Equal(t, "Email - Billing", got.Origin)
	assert.Equal(t, []string{"domain:importantcustomer.example", "keywords:technical", "address:billing@company.example", "address:support@company.example"}, got.Fired)
	got = route(t, r, mail{from: "x@y.example", body: "エラーが出ます。エラー"})
	assert.Equal(t, "technical", got.Queue)
	assert.Equal(t, "Email - Support", got.Origin)
}

func TestLoadFile_JSON(t *testing.T) {
	r, err := routing.LoadFile("testdata/rules.json", nil)
	require.NoError(t, err)
	got := route(t, r, mail{from: "x@y.example", body: "a chargeback"})
	assert.Equal(t, "billing", got.Queue)
	got = route(t, r, mail{from: "x@y.example", body: "error crashed newsletter"})
	assert.Equal(t, "general", got.Queue)
	assert.Equal(t, []mailcase.QueueScore{{Queue: "technical", Score: 1}}, got.Scores)

	// The same file decodes with encoding/json into the same Config.
	raw, err := os.ReadFile("testdata/rules.json")
	require.NoError(t, err)
	var viaJSON routing.Config
	require.NoError(t, json.Unmarshal(raw, &viaJSON))
	viaYAML, err := routing.ParseConfig("x", raw)
	require.NoError(t, err)
	assert.Equal(t, viaJSON.Keywords.Sets[0].Words[1].Text, viaYAML.Keywords.Sets[0].Words[1].Text)
	assert.Equal(t, viaJSON.Keywords.Sets[0].Words[1].Weight, viaYAML.Keywords.Sets[0].Words[1].Weight)
	_, err = routing.Compile(&viaJSON, nil)
	require.NoError(t, err)
}

func TestCompile_GoConfig(t *testing.T) {
	cfg := &routing.Config{
		Queues:       []string{"general", "billing"},
		DefaultQueue: "general",
		Senders:      []routing.SenderRule{{Domain: "bigcorp.example", Effect: routing.Effect{Priority: mailcase.PriorityHigh}}},
		Keywords: &routing.KeywordConfig{Sets: []routing.KeywordSet{{
			Effect: routing.Effect{Queue: "billing"},
			Words:  []routing.Keyword{{Text: "invoice"}},
		}}},
	}
	r, err := routing.Compile(cfg, nil)
	require.NoError(t, err)
	got := route(t, r, mail{from: "a@bigcorp.example", body: "invoice"})
	assert.Equal(t, "billing", got.Queue)
	assert.Equal(t, mailcase.PriorityHigh, got.Priority)
}

func TestLoadFile_Model(t *testing.T) {
	dir := t.TempDir()
	nb, err := routing.Train(labelled(120, 5), nil)
	require.NoError(t, err)
	require.NoError(t, nb.WriteFile(filepath.Join(dir, "model.json")))
	rules := filepath.Join(dir, "rules.yaml")
	require.NoError(t, os.WriteFile(rules, []byte(`
queues: [default, billing]
classifier:
  model: model.json
  actions:
    - intent: billing
      min_confidence: 0.5
      queue: billing
`), 0o644))
	r, err := routing.LoadFile(rules, nil)
	require.NoError(t, err)
	got := route(t, r, mail{subject: "Charged twice", body: "I was charged twice for the same order, please refund the payment."})
	assert.Equal(t, "billing", got.Queue)

	require.NoError(t, os.WriteFile(filepath.Join(dir, "model.json"), []byte(`{"format":"other"}`), 0o644))
	_, err = routing.LoadFile(rules, nil)
	require.ErrorIs(t, err, routing.ErrInvalidConfig)
	assert.EqualError(t, err, rules+`:4: classifier: read model `+filepath.Join(dir, "model.json")+
		`: invalid classifier model: format "other", want "emailcrm.routing.naive-bayes"`)

	_, err = routing.LoadFile(filepath.Join(dir, "missing.yaml"), nil)
	require.Error(t, err)
	assert.True(t, errors.Is(err, os.ErrNotExist))
}

// TestConfigErrors checks the message of every configuration error: it
// names the file, the line and the rule.
func TestConfigErrors(t *testing.T) {
	const q = "queues: [general, billing]\ndefault_queue: general\n"
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "empty", in: "", want: "rules.yaml: empty configuration"},
		{name: "not a mapping", in: "- a\n- b\n", want: "rules.yaml:1: the configuration must be a mapping"},
		{name: "syntax", in: "queues: [a\n", want: "rules.yaml:1: did not find expected ',' or ']'"},
		{name: "unknown top-level field", in: q + "queue: x\n",
			want: `rules.yaml:3: unknown field "queue" (want one of version, queues, default_queue, follow_thread, max_text, text, addresses, senders, customers, classifier, keywords)`},
		{name: "duplicate key", in: q + "queues: [x]\n", want: `rules.yaml:3: field "queues" repeated (first at line 1)`},
		{name: "wrong type", in: "queues: general\n", want: "rules.yaml:1: cannot unmarshal !!str `general` into []string"},
		{name: "unknown rule field", in: q + "senders:\n  - domain: x.example\n    qeue: billing\n",
			want: `rules.yaml:5: unknown field "qeue" (want one of name, address, domain, queue, priority, origin, category)`},
		{name: "rules not a list", in: q + "senders:\n  domain: x.example\n", want: "rules.yaml:4: expected a list of rules"},
		{name: "bad keyword", in: q + "keywords:\n  sets:\n    - queue: billing\n      words: [[a]]\n",
			want: "rules.yaml:6: a keyword is a string or a mapping with text and weight"},
		{name: "unknown keyword field", in: q + "keywords:\n  sets:\n    - queue: billing\n      words: [{txt: a}]\n",
			want: `rules.yaml:6: unknown field "txt" (want one of text, weight)`},
		{name: "no queues", in: "default_queue: general\n", want: "rules.yaml: no queues declared: list the group queues under queues\n" +
			`rules.yaml: default_queue "general" is not a declared queue`},
		{name: "person as queue", in: "queues: [general, jane@company.example]\ndefault_queue: general\n",
			want: `rules.yaml: queue "jane@company.example": looks like a mail address: mail is routed to group queues, never to a person`},
		{name: "bad queue names", in: "queues: [general, '', ' padded', \"tab\\there\", " + strings.Repeat("q", 201) + "]\ndefault_queue: general\n",
			want: `rules.yaml: queue "": empty queue name` + "\n" + `rules.yaml: queue " padded": queue name has surrounding space` + "\n" +
				`rules.yaml: queue "tab\there": queue name has control characters` + "\n" +
				`rules.yaml: queue "` + strings.Repeat("q", 201) + `": queue name longer than 200 bytes`},
		{name: "text not a mapping", in: q + "text: yes\n", want: "rules.yaml:3: expected a mapping"},
		{name: "queue twice", in: "queues: [general, general]\ndefault_queue: general\n", want: `rules.yaml: queue "general" declared twice`},
		{name: "version", in: "version: 2\n" + q, want: "rules.yaml: unsupported version 2 (this build reads version 1)"},
		{name: "undeclared queue", in: q + "senders:\n  - name: vip-domain\n    domain: vip.example\n    queue: jane.doe\n",
			want: `rules.yaml:4: rule domain:vip-domain: queue "jane.doe" is not a declared queue (declared: general, billing); mail is routed to group queues only`},
		{name: "bad priority", in: q + "addresses:\n  - address: a@company.example\n    priority: asap\n",
			want: `rules.yaml:4: rule address:a@company.example: priority "asap" is not one of low, normal, high, urgent`},
		{name: "rule sets nothing", in: q + "customers:\n  - support_level: gold\n",
			want: "rules.yaml:4: rule customer:gold: the rule sets nothing (give a queue, priority, origin or category)"},
		{name: "bad address", in: q + "addresses:\n  - address: nobody\n    queue: billing\n",
			want: `rules.yaml:4: rule address:nobody: address "nobody" is not a mail address`},
		{name: "address twice", in: q + "addresses:\n  - address: a@x.example\n    queue: billing\n  - name: again\n    address: A@X.example\n    queue: general\n",
			want: "rules.yaml:6: rule address:again: address a@x.example already has rule address:a@x.example"},
		{name: "sender needs one of address and domain", in: q + "senders:\n  - address: a@x.example\n    domain: x.example\n    queue: billing\n",
			want: "rules.yaml:4: rule sender:a@x.examplex.example: set exactly one of address and domain"},
		{name: "bad domain", in: q + "senders:\n  - domain: \"bad domain\"\n    queue: billing\n",
			want: `rules.yaml:4: rule domain:bad domain: domain "bad domain" is not a domain`},
		{name: "domain twice", in: q + "senders:\n  - domain: x.example\n    queue: billing\n  - domain: '*.X.example'\n    queue: general\n",
			want: "rules.yaml:6: rule domain:x.example: domain x.example already has rule domain:x.example"},
		{name: "duplicate rule name", in: q + "senders:\n  - name: a\n    domain: x.example\n    queue: billing\n  - name: a\n    domain: y.example\n    queue: billing\n",
			want: "rules.yaml:7: rule domain:a: rule name used twice (first at line 4)"},
		{name: "support level twice", in: q + "customers:\n  - support_level: Gold\n    queue: billing\n  - name: g2\n    support_level: gold\n    queue: general\n",
			want: `rules.yaml:6: rule customer:g2: support level "gold" already has rule customer:gold`},
		{name: "empty support level", in: q + "customers:\n  - support_level: ' '\n    queue: billing\n",
			want: "rules.yaml:4: rule customer:?: support_level is empty"},
		{name: "classifier without model", in: q + "classifier:\n  actions:\n    - intent: billing\n      queue: billing\n",
			want: "rules.yaml:4: classifier actions need a model (classifier.model) or Options.Classifier"},
		{name: "action without intent", in: q + "classifier:\n  model: m.json\n  actions:\n    - name: x\n      queue: billing\n",
			want: "rules.yaml:6: rule classifier:x: intent (the classifier category) is empty\n" +
				"rules.yaml:4: classifier: read model: open m.json: no such file or directory"},
		{name: "confidence out of range", in: q + "classifier:\n  actions:\n    - intent: billing\n      min_confidence: 1.5\n      queue: billing\n",
			want: "rules.yaml:5: rule classifier:billing: min_confidence 1.5 is not between 0 and 1\n" +
				"rules.yaml:4: classifier actions need a model (classifier.model) or Options.Classifier"},
		{name: "keyword set without queue", in: q + "keywords:\n  sets:\n    - name: k\n      words: [a]\n",
			want: "rules.yaml:5: rule keywords:k: a keyword set needs a queue"},
		{name: "keyword set queue twice", in: q + "keywords:\n  sets:\n    - queue: billing\n      words: [a]\n    - name: b2\n      queue: billing\n      words: [b]\n",
			want: `rules.yaml:7: rule keywords:b2: queue "billing" already has keyword set keywords:billing`},
		{name: "keyword set without words", in: q + "keywords:\n  sets:\n    - queue: billing\n      negative: [a]\n",
			want: "rules.yaml:5: rule keywords:billing: no words"},
		{name: "negative weight", in: q + "keywords:\n  sets:\n    - queue: billing\n      words:\n        - invoice\n        - {text: spam, weight: -2}\n",
			want: `rules.yaml:8: rule keywords:billing: keyword "spam": weight must be positive (list negative keywords under negative)`},
		{name: "empty keyword", in: q + "keywords:\n  sets:\n    - queue: billing\n      words: [invoice, '  ', 'a*b', '*']\n",
			want: "rules.yaml:6: rule keywords:billing: keyword \"  \" is empty or has a '*' inside (only a leading or trailing '*' is allowed)\n" +
				"rules.yaml:6: rule keywords:billing: keyword \"a*b\" is empty or has a '*' inside (only a leading or trailing '*' is allowed)\n" +
				"rules.yaml:6: rule keywords:billing: keyword \"*\" is empty or has a '*' inside (only a leading or trailing '*' is allowed)"},
		{name: "keywords without sets", in: q + "keywords:\n  threshold: 2\n", want: "rules.yaml:4: keywords: no sets"},
		{name: "negative threshold", in: q + "keywords:\n  threshold: -1\n  sets: []\n",
			want: "rules.yaml:4: keywords: threshold, subject_weight, body_weight and max_hits must be positive numbers (0 means the default)"},
		{name: "negative max_text", in: q + "max_text: -5\n", want: "rules.yaml: max_text must not be negative"},
		{name: "control characters in origin", in: q + "addresses:\n  - address: a@x.example\n    origin: \"a\\nb\"\n",
			want: "rules.yaml:4: rule address:a@x.example: origin must be at most 200 bytes without control characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := routing.ParseConfig("rules.yaml", []byte(tc.in))
			if err == nil {
				_, err = routing.Compile(cfg, nil)
			}
			require.Error(t, err)
			assert.ErrorIs(t, err, routing.ErrInvalidConfig)
			assert.Equal(t, tc.want, err.Error())
		})
	}
}

func TestConfigErrors_GoConfig(t *testing.T) {
	_, err := routing.Compile(nil, nil)
	require.EqualError(t, err, "routing: no configuration")
	_, err = routing.Compile(&routing.Config{Queues: []string{"default"},
		Senders: []routing.SenderRule{{Name: "x", Domain: "x.example", Effect: routing.Effect{Queue: "bob"}}}}, nil)
	require.EqualError(t, err, `routing: rule domain:x: queue "bob" is not a declared queue (declared: default); mail is routed to group queues only`)
	var ce *routing.ConfigError
	require.True(t, errors.As(err, &ce))
	assert.Equal(t, "domain:x", ce.Rule)
	assert.Zero(t, ce.Line)
	assert.Equal(t, "routing: line 3: rule r: m", (&routing.ConfigError{Line: 3, Rule: "r", Msg: "m"}).Error())
	assert.True(t, strings.HasPrefix((&routing.ConfigError{File: "f", Msg: "m"}).Error(), "f: m"))
}
