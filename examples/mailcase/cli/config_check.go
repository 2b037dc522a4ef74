package cli

// config_check.go validates a configuration file when it loads: every key
// is known, every duration has a unit, every enumerated value is one of
// its valid values, and the combinations make sense (a move needs its
// folder). Each mistake is reported with its line and the valid values, so
// that an operator fixes it before the first connection.

import (
	"errors"
	"fmt"
	"net"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/emailcrm/emailcrm/adapters/imapsource"
	"github.com/emailcrm/emailcrm/mailcase"
)

// configError is a mistake at a line of the configuration file (0: the
// file as a whole).
type configError struct {
	line int
	msg  string
}

func (e *configError) Error() string {
	if e.line > 0 {
		return fmt.Sprintf("line %d: %s", e.line, e.msg)
	}
	return e.msg
}

// configLines maps a key path ("mailboxes[0].source.security") to the line
// of its value, and a path's parent key line when the key is absent.
type configLines map[string]int

// at returns the line of path, or of its nearest present parent.
func (l configLines) at(path string) int {
	for path != "" {
		if n, ok := l[path]; ok {
			return n
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

// errAt returns a configError at path's line.
func (l configLines) errAt(path, format string, args ...any) error {
	return &configError{line: l.at(path), msg: fmt.Sprintf(format, args...)}
}

var durationType = reflect.TypeFor[time.Duration]()

// checkNode checks that every key of n is a field of t (following yaml
// tags and inline structs) and that every duration has a unit, and
// records the line of every value in lines.
func checkNode(n *yaml.Node, t reflect.Type, path string, lines configLines) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	switch {
	case t == durationType:
		if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
			return nil
		}
		if _, err := time.ParseDuration(n.Value); err != nil {
			return &configError{line: n.Line, msg: fmt.Sprintf("%s: %q is not a duration (write it with a unit: 90s, 2m, 1h30m)", path, n.Value)}
		}
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := yamlFields(t)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Value == "<<" { // merge key
				continue
			}
			ft, ok := fields[k.Value]
			if !ok {
				keys := make([]string, 0, len(fields))
				for name := range fields {
					keys = append(keys, name)
				}
				slices.Sort(keys)
				where := "at the top level"
				if path != "" {
					where = "in " + path
				}
				return &configError{line: k.Line, msg: fmt.Sprintf("unknown key %q %s (valid keys: %s)", k.Value, where, strings.Join(keys, ", "))}
			}
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			lines[p] = v.Line
			if err := checkNode(v, ft, p, lines); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		// The values of a map (webforms, templates) are checked too.
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := path + "." + k.Value
			lines[p] = v.Line
			if err := checkNode(v, t.Elem(), p, lines); err != nil {
				return err
			}
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for i, v := range n.Content {
			p := path + "[" + strconv.Itoa(i) + "]"
			lines[p] = v.Line
			if err := checkNode(v, t.Elem(), p, lines); err != nil {
				return err
			}
		}
	}
	return nil
}

// yamlFields returns the keys of struct t and their types, inline structs
// included.
func yamlFields(t reflect.Type) map[string]reflect.Type {
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(","+opts+",", ",inline,") {
			for k, v := range yamlFields(f.Type) {
				out[k] = v
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out[name] = f.Type
	}
	return out
}

var yamlLineRE = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlError turns a yaml decoding error into a configError with its line.
func yamlError(err error) error {
	var te *yaml.TypeError
	msg := err.Error()
	if errors.As(err, &te) && len(te.Errors) > 0 {
		msg = te.Errors[0]
	}
	if m := yamlLineRE.FindStringSubmatch(strings.TrimSpace(msg)); m != nil {
		n, _ := strconv.Atoi(m[1])
		return &configError{line: n, msg: m[2]}
	}
	return &configError{msg: msg}
}

// oneOf returns nil when v is one of valid ("" when allowEmpty), else an
// error at path listing the valid values.
func (l configLines) oneOf(path, v string, allowEmpty bool, valid ...string) error {
	if v == "" && allowEmpty || slices.Contains(valid, v) {
		return nil
	}
	return l.errAt(path, "%s: %q is not valid (valid values: %s)", path, v, strings.Join(valid, ", "))
}

// checkConfig validates the values of cfg; lines locates them.
func checkConfig(cfg *runConfig, lines configLines) error {
	if cfg.Store != "" {
		if _, err := normalizeStoreURL(cfg.Store); err != nil {
			return lines.errAt("store", "store: %v", err)
		}
	}
	if err := checkAuthServIDs(cfg.TrustedAuthServIDs); err != nil {
		return lines.errAt("trusted_authserv_ids", "trusted_authserv_ids: %v", err)
	}
	if err := checkEvents(&cfg.Events, lines); err != nil {
		return err
	}
	if cfg.StorePasswordEnv != "" && cfg.Store == "" {
		return lines.errAt("store_password_env", "store_password_env needs a store URL with a user name")
	}
	if err := checkPlugins(&cfg.Plugins, "", lines); err != nil {
		return err
	}
	if err := checkOutgoing(&cfg.Outgoing, lines); err != nil {
		return err
	}
	lm := &cfg.LMTP
	if lm.Listen != "" {
		if _, _, err := net.SplitHostPort(lm.Listen); err != nil {
			return lines.errAt("lmtp.listen", "lmtp.listen: %q is not host:port", lm.Listen)
		}
	}
	if lm.MaxConnections < 0 || lm.MaxMessageBytes < 0 || lm.ReadTimeout < 0 {
		return lines.errAt("lmtp", "lmtp: max_connections, max_message_bytes and read_timeout must not be negative")
	}
	if len(cfg.Mailboxes) == 0 {
		return lines.errAt("mailboxes", "no mailbox (add a mailboxes: list with at least one name)")
	}
	seen := map[string]bool{}
	for i := range cfg.Mailboxes {
		if err := checkMailbox(&cfg.Mailboxes[i], fmt.Sprintf("mailboxes[%d]", i), seen, lines); err != nil {
			return err
		}
	}
	if c := cfg.LMTP.CatchAll; c != "" && !seen[c] {
		names := make([]string, 0, len(seen))
		for n := range seen {
			names = append(names, n)
		}
		slices.Sort(names)
		return lines.errAt("lmtp.catch_all", "lmtp catch_all: no mailbox %q (mailboxes: %s)", c, strings.Join(names, ", "))
	}
	return nil
}

func checkMailbox(mb *mailboxConfig, path string, seen map[string]bool, lines configLines) error {
	at := func(key string) string { return path + "." + key }
	if mb.Name == "" {
		return lines.errAt(path, "mailbox %d has no name", lineIndex(path)+1)
	}
	if seen[mb.Name] {
		return lines.errAt(at("name"), "duplicate mailbox %q", mb.Name)
	}
	seen[mb.Name] = true
	if strings.ContainsFunc(mb.Name, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return lines.errAt(at("name"), "mailbox name %q contains a control character", mb.Name)
	}
	pre := "mailbox " + mb.Name + ": "
	if mb.Address != "" && mailcase.NormalizeAddress(mb.Address) == "" {
		return lines.errAt(at("address"), "%saddress %q is not a mail address", pre, mb.Address)
	}
	for j, r := range mb.Recipients {
		if mailcase.NormalizeAddress(r) == "" {
			return lines.errAt(fmt.Sprintf("%s[%d]", at("recipients"), j), "%srecipient %q is not a mail address", pre, r)
		}
	}
	if err := lines.oneOf(at("unknown_sender"), string(mb.UnknownSender), true,
		string(mailcase.UnknownPlaceholder), string(mailcase.UnknownCreateContact), string(mailcase.UnknownReject)); err != nil {
		return err
	}
	if err := lines.oneOf(at("ambiguity"), string(mb.Ambiguity), true,
		string(mailcase.AmbiguousUnassigned), string(mailcase.AmbiguousFirst), string(mailcase.AmbiguousInternal)); err != nil {
		return err
	}
	if mb.MaxSize < -1 {
		return lines.errAt(at("max_size"), "%smax_size %d is not valid (bytes; 0 is the default, -1 unlimited)", pre, mb.MaxSize)
	}
	if err := checkAuthServIDs(mb.TrustedAuthServIDs); err != nil {
		return lines.errAt(at("trusted_authserv_ids"), "%strusted_authserv_ids: %v", pre, err)
	}
	if err := checkPlugins(&mb.Plugins, path, lines); err != nil {
		return err
	}
	for _, n := range []struct {
		key string
		neg bool
	}{{"interval", mb.Interval < 0}, {"timeout", mb.Timeout < 0}, {"concurrency", mb.Concurrency < 0},
		{"source.batch_size", mb.Source.BatchSize < 0}, {"source.max_per_run", mb.Source.MaxPerRun < 0},
		{"source.poll_interval", mb.Source.PollInterval < 0}, {"source.retry_delay", mb.Source.RetryDelay < 0}} {
		if n.neg {
			return lines.errAt(at(n.key), "%s%s must not be negative", pre, n.key)
		}
	}
	return checkSource(mb, path, pre, lines)
}

func checkSource(mb *mailboxConfig, path, pre string, lines configLines) error {
	s := &mb.Source
	at := func(key string) string { return path + ".source." + key }
	switch s.Type {
	case "":
		return nil
	case "imap", "pop3":
		if s.Addr == "" || s.Username == "" {
			return lines.errAt(path+".source", "%s%s source needs addr and username", pre, s.Type)
		}
		if _, _, err := net.SplitHostPort(s.Addr); err != nil {
			return lines.errAt(at("addr"), "%ssource.addr %q is not host:port (imap.example.com:993)", pre, s.Addr)
		}
		if s.PasswordEnv == "" && s.TokenEnv == "" {
			return lines.errAt(path+".source", "%s%s source needs password_env (or oauth2_token_env)", pre, s.Type)
		}
		if err := lines.oneOf(at("security"), s.Security, true, "tls", "starttls", "insecure"); err != nil {
			return err
		}
	case "maildir", "mbox", "dir":
		if s.Path == "" {
			return lines.errAt(path+".source", "%s%s source needs path", pre, s.Type)
		}
	default:
		return lines.errAt(at("type"), "%sunknown source type %q (valid values: imap, pop3, maildir, mbox, dir)", pre, s.Type)
	}
	if s.Type != "imap" {
		for _, k := range []struct {
			key string
			set bool
		}{{"after", s.After != (imapsource.AfterCommit{})}, {"watch", s.Watch}, {"folder", s.Folder != ""},
			{"quarantine_folder", s.QuarantineFolder != ""}} {
			if k.set {
				return lines.errAt(at(k.key), "%ssource.%s is an IMAP setting; a %s source has none", pre, k.key, s.Type)
			}
		}
	}
	if s.Type == "imap" {
		a := s.After
		if err := lines.oneOf(at("after.kind"), string(a.Kind), true,
			string(imapsource.Delete), string(imapsource.Move), string(imapsource.Flag)); err != nil {
			return err
		}
		switch {
		case a.Kind == imapsource.Move && a.Folder == "":
			return lines.errAt(at("after"), "%ssource.after: kind: move needs a folder (after: {kind: move, folder: Filed})", pre)
		case a.Kind != imapsource.Move && a.Folder != "":
			return lines.errAt(at("after.folder"), "%ssource.after.folder is only for kind: move", pre)
		case a.Kind != imapsource.Flag && a.Flag != "":
			return lines.errAt(at("after.flag"), "%ssource.after.flag is only for kind: flag", pre)
		case strings.EqualFold(a.Flag, `\Deleted`):
			return lines.errAt(at("after.flag"), `%ssource.after.flag \Deleted is refused (use kind: delete)`, pre)
		case !s.Watch && mb.Interval == 0:
			return lines.errAt(path, "%san IMAP source needs an interval or watch: true", pre)
		}
	} else if mb.Interval == 0 {
		return lines.errAt(path, "%sa %s source needs an interval", pre, s.Type)
	}
	if s.Type != "pop3" && s.Keep {
		return lines.errAt(at("keep"), "%ssource.keep is a POP3 setting (IMAP: after: {kind: flag})", pre)
	}
	return nil
}

// lineIndex returns the index of "mailboxes[N]".
func lineIndex(path string) int {
	i := strings.LastIndexByte(path, '[')
	n, _ := strconv.Atoi(strings.TrimSuffix(path[i+1:], "]"))
	return n
}
