package mailcase

// UnknownSenderPolicy says what to do with mail from a sender who is no
// contact, account or employee.
type UnknownSenderPolicy string

// Unknown-sender policies.
const (
	// UnknownPlaceholder files the mail against one placeholder contact
	// (Mailbox.UnknownContactID, or one named "Unknown sender" at
	// unknown-sender@invalid created on first use). The placeholder
	// stands for many senders: its address is never a case participant,
	// and mail claiming it is handled as from an unknown sender.
	UnknownPlaceholder UnknownSenderPolicy = "placeholder"
	// UnknownCreateContact creates a contact for the sender: a customer for
	// an external mailbox, a worker record for an internal one. It is the
	// default: every sender gets a record of their own.
	UnknownCreateContact UnknownSenderPolicy = "create"
	// UnknownReject files nothing on a case; the mail is recorded and
	// acknowledged.
	UnknownReject UnknownSenderPolicy = "reject"
)

// AmbiguityPolicy says what to do when an address belongs to several
// contacts or a domain to several accounts.
type AmbiguityPolicy string

// Ambiguity policies.
const (
	// AmbiguousUnassigned creates the case with no contact or account.
	AmbiguousUnassigned AmbiguityPolicy = "unassigned"
	// AmbiguousFirst takes the first candidate in store order.
	AmbiguousFirst AmbiguityPolicy = "first"
	// AmbiguousInternal creates the case unassigned in the mailbox's
	// internal-support queue (Mailbox.InternalQueue).
	AmbiguousInternal AmbiguityPolicy = "internal"
)

// Mailbox is the configuration of one support mailbox. The zero value is
// usable: name "default", queue "default", mail analysed up to 25 MiB, a
// contact created per unknown sender.
type Mailbox struct {
	// Name identifies the mailbox in idempotency keys, statistics and logs.
	Name string `json:"name" yaml:"name"`
	// Address is the routing address (support@company.example).
	Address string `json:"address,omitempty" yaml:"address,omitempty"`
	// DefaultQueue receives mail no other rule routes. "" means
	// "default".
	DefaultQueue string `json:"default_queue,omitempty" yaml:"default_queue,omitempty"`
	// Bypass sends every new case to DefaultQueue without routing.
	Bypass bool `json:"bypass,omitempty" yaml:"bypass,omitempty"`
	// MaxSize is the largest mail analysed, in bytes; 0 means 25 MiB, -1
	// means unlimited. Larger mail is filed unanalysed in DefaultQueue.
	MaxSize int64 `json:"max_size,omitempty" yaml:"max_size,omitempty"`
	// RejectOversized refuses oversized mail instead of filing it: it is
	// quarantined with the reason, never dropped.
	RejectOversized bool `json:"reject_oversized,omitempty" yaml:"reject_oversized,omitempty"`
	// Internal marks a mailbox for employees (unknown senders become worker
	// contacts under UnknownCreateContact).
	Internal bool `json:"internal,omitempty" yaml:"internal,omitempty"`
	// UnknownSender is the unknown-sender policy; "" means
	// UnknownPlaceholder when UnknownContactID is set, else
	// UnknownCreateContact, or, when the store has no contact directory
	// (driver.Directory), no contact at all for unknown senders.
	UnknownSender UnknownSenderPolicy `json:"unknown_sender,omitempty" yaml:"unknown_sender,omitempty"`
	// UnknownContactID is the placeholder contact of UnknownPlaceholder;
	// "" means one named "Unknown sender" is created on first use.
	UnknownContactID string `json:"unknown_contact_id,omitempty" yaml:"unknown_contact_id,omitempty"`
	// Ambiguity is the ambiguity policy; "" means unassigned.
	Ambiguity AmbiguityPolicy `json:"ambiguity,omitempty" yaml:"ambiguity,omitempty"`
	// InternalQueue receives ambiguous and undecidable mail under
	// AmbiguousInternal; "" means DefaultQueue.
	InternalQueue string `json:"internal_queue,omitempty" yaml:"internal_queue,omitempty"`
	// BlockAddresses and BlockDomains list exception senders.
	BlockAddresses []string `json:"block_addresses,omitempty" yaml:"block_addresses,omitempty"`
	BlockDomains   []string `json:"block_domains,omitempty" yaml:"block_domains,omitempty"`
	// KeepFilteredBody files the body of filtered mail, not only a summary.
	KeepFilteredBody bool `json:"keep_filtered_body,omitempty" yaml:"keep_filtered_body,omitempty"`
}

const defaultMaxSize = 25 << 20

// withDefaults returns a copy with defaults resolved.
func (m Mailbox) withDefaults() Mailbox {
	if m.Name == "" {
		m.Name = "default"
	}
	if m.DefaultQueue == "" {
		m.DefaultQueue = "default"
	}
	if m.MaxSize == 0 {
		m.MaxSize = defaultMaxSize
	}
	if m.UnknownSender == "" && m.UnknownContactID != "" {
		m.UnknownSender = UnknownPlaceholder // naming the contact chooses the policy
	}
	if m.UnknownSender == "" {
		m.UnknownSender = UnknownCreateContact
	}
	if m.Ambiguity == "" {
		m.Ambiguity = AmbiguousUnassigned
	}
	if m.InternalQueue == "" {
		m.InternalQueue = m.DefaultQueue
	}
	m.Address = NormalizeAddress(m.Address)
	return m
}
