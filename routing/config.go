package routing

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/emailcrm/emailcrm/mailcase"
)

// ErrInvalidConfig is matched (errors.Is) by every configuration error
// returned by ParseConfig, Compile and LoadFile.
var ErrInvalidConfig = errors.New("invalid routing configuration")

// ConfigError is one problem found in a configuration. Error reads
// "file:line: rule NAME: message"; parts that are unknown are left out. A
// configuration built in Go has no file: its errors read
// "routing: rule NAME: message".
type ConfigError struct {
	File string
	Line int
	// Rule names the rule, for example `keywords:billing` or
	// `sender:ceo@bigcorp.example`; "" for top-level problems.
	Rule string
	Msg  string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		if e.Line > 0 {
			b.WriteString(":" + strconv.Itoa(e.Line))
		}
		b.WriteString(": ")
	} else {
		b.WriteString("routing: ")
		if e.Line > 0 {
			b.WriteString("line " + strconv.Itoa(e.Line) + ": ")
		}
	}
	if e.Rule != "" {
		b.WriteString("rule " + e.Rule + ": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Is makes errors.Is(err, ErrInvalidConfig) true.
func (e *ConfigError) Is(target error) bool { return target == ErrInvalidConfig }

// Config is a routing configuration: what LoadFile reads from YAML or JSON,
// and what Compile turns into a Router. Build one in Go code or with
// ParseConfig. Rules are evaluated in the order documented in the package
// comment, not in the order they are written.
type Config struct {
	// Version is the configuration format version: 1 (0 means 1).
	Version int `json:"version,omitempty" yaml:"version,omitempty"`
	// Queues declares the group queues. Every rule must target one of
	// them, so no rule can route mail to a person.
	Queues []string `json:"queues" yaml:"queues"`
	// DefaultQueue receives mail no rule routes when the delivery has no
	// mailbox or its mailbox has no default queue; "" means "default". The
	// mailbox's own default queue (Mailbox.DefaultQueue) comes first, and
	// the pipeline always sets one.
	DefaultQueue string `json:"default_queue,omitempty" yaml:"default_queue,omitempty"`
	// FollowThread routes a reply that opens a new case linked to an older
	// one to the older case's queue; nil means true.
	FollowThread *bool `json:"follow_thread,omitempty" yaml:"follow_thread,omitempty"`
	// MaxText bounds the bytes of subject and body analysed by keywords and
	// the classifier; 0 means 256 KiB. Longer text is cut.
	MaxText int `json:"max_text,omitempty" yaml:"max_text,omitempty"`
	// Text configures normalisation (accents).
	Text TextOptions `json:"text,omitzero" yaml:"text,omitempty"`
	// Addresses are routing-address rules.
	Addresses []AddressRule `json:"addresses,omitempty" yaml:"addresses,omitempty"`
	// Senders are sender address and domain rules.
	Senders []SenderRule `json:"senders,omitempty" yaml:"senders,omitempty"`
	// Customers are support-level rules.
	Customers []CustomerRule `json:"customers,omitempty" yaml:"customers,omitempty"`
	// Classifier maps classifier categories to actions.
	Classifier *ClassifierConfig `json:"classifier,omitempty" yaml:"classifier,omitempty"`
	// Keywords configures keyword scoring.
	Keywords *KeywordConfig `json:"keywords,omitempty" yaml:"keywords,omitempty"`

	// Source names the file the configuration came from; it prefixes error
	// messages and relative paths (Classifier.Model) are resolved against
	// its directory. "" for configurations built in code.
	Source string `json:"-" yaml:"-"`
}

// Effect is what a rule sets. Empty fields set nothing. Priority is one of
// low, normal, high, urgent; Queue must be a declared queue.
type Effect struct {
	Queue    string            `json:"queue,omitempty" yaml:"queue,omitempty"`
	Priority mailcase.Priority `json:"priority,omitempty" yaml:"priority,omitempty"`
	Origin   string            `json:"origin,omitempty" yaml:"origin,omitempty"`
	Category string            `json:"category,omitempty" yaml:"category,omitempty"`
}

// IsZero reports whether e sets nothing.
func (e Effect) IsZero() bool { return e == Effect{} }

// AddressRule gives the defaults of mail sent to a routing address: the
// mailbox address or a To/Cc recipient.
type AddressRule struct {
	Name    string `json:"name,omitempty" yaml:"name,omitempty"`
	Address string `json:"address" yaml:"address"`
	Effect  `yaml:",inline"`
	// Line is the rule's line in Config.Source (0 when built in code).
	Line int `json:"-" yaml:"-"`
}

// SenderRule matches the sender's address (Address) or domain (Domain,
// which also matches its subdomains); exactly one must be set.
type SenderRule struct {
	Name    string `json:"name,omitempty" yaml:"name,omitempty"`
	Address string `json:"address,omitempty" yaml:"address,omitempty"`
	Domain  string `json:"domain,omitempty" yaml:"domain,omitempty"`
	Effect  `yaml:",inline"`
	Line    int `json:"-" yaml:"-"`
}

// CustomerRule matches the support level of the matched contact (or, when
// the contact has none, of its account), case-insensitively.
type CustomerRule struct {
	Name         string `json:"name,omitempty" yaml:"name,omitempty"`
	SupportLevel string `json:"support_level" yaml:"support_level"`
	Effect       `yaml:",inline"`
	Line         int `json:"-" yaml:"-"`
}

// ClassifierConfig maps classifier categories to actions.
type ClassifierConfig struct {
	// Model is a model file written by NaiveBayes.WriteFile (see the train
	// command). Options.Classifier, when set, is used instead.
	Model   string       `json:"model,omitempty" yaml:"model,omitempty"`
	Actions []ActionRule `json:"actions" yaml:"actions"`
	Line    int          `json:"-" yaml:"-"`
}

// ActionRule is eligible when the classifier predicts the category Intent
// with at least MinConfidence. Of the eligible actions only the one with the
// highest Rank runs (the first declared on equal ranks). Its Effect.Category
// defaults to Intent.
type ActionRule struct {
	Name          string  `json:"name,omitempty" yaml:"name,omitempty"`
	Intent        string  `json:"intent" yaml:"intent"`
	MinConfidence float64 `json:"min_confidence,omitempty" yaml:"min_confidence,omitempty"`
	Rank          int     `json:"rank,omitempty" yaml:"rank,omitempty"`
	Effect        `yaml:",inline"`
	Line          int `json:"-" yaml:"-"`
}

// KeywordConfig configures keyword scoring. Each set's score is the
// sum, over every occurrence of its keywords (at most MaxHits counted per
// keyword and part), of weight × SubjectWeight for the subject or weight ×
// BodyWeight for the body; negative keywords subtract. The best score wins if
// it reaches Threshold; on equal scores the higher subject score wins, then
// the set declared first.
type KeywordConfig struct {
	// Threshold is the score the best set must reach; 0 means 1.
	Threshold float64 `json:"threshold,omitempty" yaml:"threshold,omitempty"`
	// SubjectWeight multiplies subject hits; 0 means 2.
	SubjectWeight float64 `json:"subject_weight,omitempty" yaml:"subject_weight,omitempty"`
	// BodyWeight multiplies body hits; 0 means 1.
	BodyWeight float64 `json:"body_weight,omitempty" yaml:"body_weight,omitempty"`
	// MaxHits caps the occurrences counted per keyword in each part; 0
	// means 3.
	MaxHits int          `json:"max_hits,omitempty" yaml:"max_hits,omitempty"`
	Sets    []KeywordSet `json:"sets" yaml:"sets"`
	Line    int          `json:"-" yaml:"-"`
}

// KeywordSet is the keywords of one queue (Effect.Queue, required); the
// other Effect fields apply when the set wins.
type KeywordSet struct {
	Name     string `json:"name,omitempty" yaml:"name,omitempty"`
	Effect   `yaml:",inline"`
	Words    []Keyword `json:"words" yaml:"words"`
	Negative []Keyword `json:"negative,omitempty" yaml:"negative,omitempty"`
	Line     int       `json:"-" yaml:"-"`
}

// Keyword is a word or phrase with a weight (0 means 1). A keyword matches
// whole words: "refund" does not match "refunds". A leading or trailing "*"
// drops that side's word-boundary check ("refund*" matches "refunded").
// Keywords in scripts written without spaces (Chinese, Japanese, Thai, ...)
// match anywhere. In YAML a keyword is either a string or a mapping
// {text, weight}.
type Keyword struct {
	Text   string  `json:"text" yaml:"text"`
	Weight float64 `json:"weight,omitempty" yaml:"weight,omitempty"`
	Line   int     `json:"-" yaml:"-"`
}

// UnmarshalYAML accepts a string or a {text, weight} mapping.
func (k *Keyword) UnmarshalYAML(n *yaml.Node) error {
	k.Line = n.Line
	if n.Kind == yaml.ScalarNode {
		k.Text = n.Value
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("line %d: a keyword is a string or a mapping with text and weight", n.Line)
	}
	if err := checkKeys(n, "text", "weight"); err != nil {
		return err
	}
	var raw struct {
		Text   string  `yaml:"text"`
		Weight float64 `yaml:"weight"`
	}
	if err := n.Decode(&raw); err != nil {
		return err
	}
	k.Text, k.Weight = raw.Text, raw.Weight
	return nil
}

// UnmarshalJSON accepts a string or a {text, weight} object.
func (k *Keyword) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		return json.Unmarshal(b, &k.Text)
	}
	var raw struct {
		Text   string  `json:"text"`
		Weight float64 `json:"weight"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	k.Text, k.Weight = raw.Text, raw.Weight
	return nil
}

// keyError is a structural problem found while reading a node.
type keyError struct {
	line int
	msg  string
}

func (e *keyError) Error() string { return fmt.Sprintf("line %d: %s", e.line, e.msg) }

// checkKeys reports the first key of mapping n not in allowed, or repeated.
func checkKeys(n *yaml.Node, allowed ...string) error {
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if first, dup := seen[k.Value]; dup {
			return &keyError{line: k.Line, msg: fmt.Sprintf("field %q repeated (first at line %d)", k.Value, first)}
		}
		seen[k.Value] = k.Line
		ok := false
		for _, a := range allowed {
			if k.Value == a {
				ok = true
				break
			}
		}
		if !ok {
			return &keyError{line: k.Line, msg: fmt.Sprintf("unknown field %q (want one of %s)", k.Value, strings.Join(allowed, ", "))}
		}
	}
	return nil
}

// ReadConfigFile reads and parses a YAML or JSON configuration file (see
// ParseConfig).
func ReadConfigFile(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("routing: read configuration: %w", err)
	}
	return ParseConfig(path, data)
}

// ParseConfig parses a YAML (or JSON, which is read as YAML) configuration.
// name is used in error messages and as Config.Source. Structural errors
// (syntax, unknown fields, wrong types) are reported here with their line;
// rule semantics are checked by Compile. Every error matches
// ErrInvalidConfig.
func ParseConfig(name string, data []byte) (*Config, error) {
	// YAML forbids tabs in indentation; JSON files commonly use them.
	if t := bytes.TrimSpace(data); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		data = bytes.ReplaceAll(data, []byte("\t"), []byte("    "))
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, yamlError(name, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, &ConfigError{File: name, Msg: "empty configuration"}
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		return nil, &ConfigError{File: name, Line: root.Line, Msg: "the configuration must be a mapping"}
	}
	cfg := &Config{Source: name}
	fail := func(err error) (*Config, error) {
		var ke *keyError
		if errors.As(err, &ke) {
			return nil, &ConfigError{File: name, Line: ke.line, Msg: ke.msg}
		}
		return nil, yamlError(name, err)
	}
	if err := checkKeys(root, "version", "queues", "default_queue", "follow_thread", "max_text", "text",
		"addresses", "senders", "customers", "classifier", "keywords"); err != nil {
		return fail(err)
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		key, val := root.Content[i].Value, root.Content[i+1]
		var err error
		switch key {
		case "version":
			err = val.Decode(&cfg.Version)
		case "queues":
			err = val.Decode(&cfg.Queues)
		case "default_queue":
			err = val.Decode(&cfg.DefaultQueue)
		case "follow_thread":
			var b bool
			if err = val.Decode(&b); err == nil {
				cfg.FollowThread = &b
			}
		case "max_text":
			err = val.Decode(&cfg.MaxText)
		case "text":
			if err = mappingKeys(val, "keep_accents"); err == nil {
				err = val.Decode(&cfg.Text)
			}
		case "addresses":
			err = decodeRules(val, &cfg.Addresses, []string{"name", "address", "queue", "priority", "origin", "category"},
				func(r *AddressRule, line int) { r.Line = line })
		case "senders":
			err = decodeRules(val, &cfg.Senders, []string{"name", "address", "domain", "queue", "priority", "origin", "category"},
				func(r *SenderRule, line int) { r.Line = line })
		case "customers":
			err = decodeRules(val, &cfg.Customers, []string{"name", "support_level", "queue", "priority", "origin", "category"},
				func(r *CustomerRule, line int) { r.Line = line })
		case "classifier":
			cfg.Classifier = &ClassifierConfig{Line: val.Line}
			err = decodeClassifier(val, cfg.Classifier)
		case "keywords":
			cfg.Keywords = &KeywordConfig{Line: val.Line}
			err = decodeKeywords(val, cfg.Keywords)
		}
		if err != nil {
			return fail(err)
		}
	}
	return cfg, nil
}

func mappingKeys(n *yaml.Node, allowed ...string) error {
	if n.Kind != yaml.MappingNode {
		return &keyError{line: n.Line, msg: "expected a mapping"}
	}
	return checkKeys(n, allowed...)
}

// decodeRules decodes a sequence of rule mappings, recording each line.
func decodeRules[T any](n *yaml.Node, out *[]T, allowed []string, setLine func(*T, int)) error {
	if n.Kind != yaml.SequenceNode {
		return &keyError{line: n.Line, msg: "expected a list of rules"}
	}
	for _, item := range n.Content {
		if err := mappingKeys(item, allowed...); err != nil {
			return err
		}
		var r T
		if err := item.Decode(&r); err != nil {
			return err
		}
		setLine(&r, item.Line)
		*out = append(*out, r)
	}
	return nil
}

func decodeClassifier(n *yaml.Node, c *ClassifierConfig) error {
	if err := mappingKeys(n, "model", "actions"); err != nil {
		return err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i].Value, n.Content[i+1]
		var err error
		switch key {
		case "model":
			err = val.Decode(&c.Model)
		case "actions":
			err = decodeRules(val, &c.Actions, []string{"name", "intent", "min_confidence", "rank", "queue", "priority", "origin", "category"},
				func(r *ActionRule, line int) { r.Line = line })
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func decodeKeywords(n *yaml.Node, k *KeywordConfig) error {
	if err := mappingKeys(n, "threshold", "subject_weight", "body_weight", "max_hits", "sets"); err != nil {
		return err
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key, val := n.Content[i].Value, n.Content[i+1]
		var err error
		switch key {
		case "threshold":
			err = val.Decode(&k.Threshold)
		case "subject_weight":
			err = val.Decode(&k.SubjectWeight)
		case "body_weight":
			err = val.Decode(&k.BodyWeight)
		case "max_hits":
			err = val.Decode(&k.MaxHits)
		case "sets":
			err = decodeRules(val, &k.Sets, []string{"name", "queue", "priority", "origin", "category", "words", "negative"},
				func(r *KeywordSet, line int) { r.Line = line })
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// yamlError converts a yaml error ("yaml: line 3: ...") to a ConfigError.
func yamlError(name string, err error) error {
	msg := err.Error()
	var te *yaml.TypeError
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = strings.Join(te.Errors, "; ")
	}
	msg = strings.TrimPrefix(msg, "yaml: ")
	line := 0
	if strings.HasPrefix(msg, "line ") {
		rest := msg[len("line "):]
		if j := strings.IndexByte(rest, ':'); j > 0 {
			if n, err := strconv.Atoi(rest[:j]); err == nil {
				line = n
				msg = strings.TrimSpace(rest[j+1:])
			}
		}
	}
	return &ConfigError{File: name, Line: line, Msg: msg}
}
