// Package policy turns sesame's HCL configuration into a validated Policy,
// the typed model that every other package reads. Parsing decodes HCL into
// raw structs; validation turns them into typed values with defaults applied
// and reports every mistake with its file:line:col.
package policy

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
)

// Proto is a transport protocol. Its value is the IP protocol number, so it
// can be compared with packet headers and nftables' meta l4proto directly.
type Proto uint8

// The protocols a knock or a grant can use.
const (
	TCP Proto = 6
	UDP Proto = 17
)

// String returns "tcp" or "udp".
func (p Proto) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	}
	return fmt.Sprintf("proto(%d)", uint8(p))
}

// ParseProto parses "tcp" or "udp" (case-insensitive).
func ParseProto(s string) (Proto, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	}
	return 0, fmt.Errorf("unknown protocol %q: want tcp or udp", s)
}

// PortProto is one port of one protocol: a knock step or a guarded port.
type PortProto struct {
	Port  uint16
	Proto Proto
}

// String returns the config form, e.g. "7000/tcp".
func (pp PortProto) String() string { return fmt.Sprintf("%d/%s", pp.Port, pp.Proto) }

// Compare orders by protocol, then port.
func (pp PortProto) Compare(o PortProto) int {
	if c := cmp.Compare(pp.Proto, o.Proto); c != 0 {
		return c
	}
	return cmp.Compare(pp.Port, o.Port)
}

// TCP flag bits as they appear in byte 13 of the TCP header.
const (
	FlagFIN uint8 = 0x01
	FlagSYN uint8 = 0x02
	FlagRST uint8 = 0x04
	FlagPSH uint8 = 0x08
	FlagACK uint8 = 0x10
	FlagURG uint8 = 0x20
)

var flagNames = []struct {
	name string
	bit  uint8
}{
	{"fin", FlagFIN}, {"syn", FlagSYN}, {"rst", FlagRST},
	{"psh", FlagPSH}, {"ack", FlagACK}, {"urg", FlagURG},
}

// TCPFlags is a knockd-style TCP flag filter: a hit passes when
// flags&Mask == Want. "syn,!ack" is Mask SYN|ACK, Want SYN.
type TCPFlags struct {
	Mask uint8
	Want uint8
}

// DefaultTCPFlags is "syn,!ack": a bare SYN, as a connect sends.
var DefaultTCPFlags = TCPFlags{Mask: FlagSYN | FlagACK, Want: FlagSYN}

// Match reports whether a TCP header's flags pass the filter.
func (f TCPFlags) Match(flags uint8) bool { return flags&f.Mask == f.Want }

// String returns the knockd syntax, e.g. "syn,!ack".
func (f TCPFlags) String() string {
	var parts []string
	for _, n := range flagNames {
		if f.Mask&n.bit == 0 {
			continue
		}
		if f.Want&n.bit == 0 {
			parts = append(parts, "!"+n.name)
		} else {
			parts = append(parts, n.name)
		}
	}
	return strings.Join(parts, ",")
}

// ParseTCPFlags parses knockd's syntax: a comma-separated list of fin, syn,
// rst, psh, ack, urg, each optionally negated with "!". Case-insensitive;
// spaces around items are ignored. A flag may not appear twice.
func ParseTCPFlags(s string) (TCPFlags, error) {
	var f TCPFlags
	if strings.TrimSpace(s) == "" {
		return f, fmt.Errorf("empty flag list: want a comma-separated list of fin, syn, rst, psh, ack, urg, each optionally negated by a leading \"!\" (e.g. \"syn,!ack\")")
	}
	for item := range strings.SplitSeq(s, ",") {
		item = strings.ToLower(strings.TrimSpace(item))
		neg := strings.HasPrefix(item, "!")
		name := strings.TrimSpace(strings.TrimPrefix(item, "!"))
		var bit uint8
		for _, n := range flagNames {
			if n.name == name {
				bit = n.bit
			}
		}
		if bit == 0 {
			return TCPFlags{}, fmt.Errorf("unknown TCP flag %q: want fin, syn, rst, psh, ack or urg, each optionally negated by a leading \"!\" (e.g. \"syn,!ack\")", item)
		}
		if f.Mask&bit != 0 {
			return TCPFlags{}, fmt.Errorf("TCP flag %q given twice", name)
		}
		f.Mask |= bit
		if !neg {
			f.Want |= bit
		}
	}
	return f, nil
}

// Closed is what the table does with packets to a guarded port that has no
// grant.
type Closed uint8

// The closed modes.
const (
	ClosedDrop   Closed = iota // silently drop
	ClosedReject               // TCP reset / ICMP port unreachable
)

// String returns "drop" or "reject".
func (c Closed) String() string {
	if c == ClosedReject {
		return "reject"
	}
	return "drop"
}

// TableMode says how much of its table sesame keeps.
type TableMode uint8

// The table modes.
const (
	// TableFull: sesame owns the table, its sets and its input chain.
	TableFull TableMode = iota
	// TableSets: the table is the admin's; sesame keeps only its sets in
	// it (each marked with its comment) and never touches a chain: the
	// admin's own chain uses them (`sesame check --ruleset`).
	TableSets
)

// String returns "full" or "sets".
func (m TableMode) String() string {
	if m == TableSets {
		return "sets"
	}
	return "full"
}

// Door is one knock sequence and what it opens.
type Door struct {
	Name          string
	Sequence      []PortProto   // 1..MaxSequence steps, in order
	SeqTimeout    time.Duration // whole sequence, from its first hit
	TCPFlags      TCPFlags      // filter for TCP steps
	Open          []PortProto   // what a correct knock grants on this host; nil with only Forward
	Forward       []Target      // forwarded services a correct knock grants (forward.go); nil when unset
	OpenFor       time.Duration // element timeout in the kernel set
	CloseSequence []PortProto   // optional early revoke; nil when unset

	TOTP        *TOTP         // a TOTP door (see totp.go); Sequence is then nil
	SPA         *SPA          // an SPA door (see spa.go); Sequence is then nil
	Clients     []Client      // a TOTP or SPA door's clients, each with its own secret
	OneTimeFile string        // one_time_sequences; "" when unset (sesame only reads it)
	OneTimeUsed string        // the state file recording its used sequences (onetime.StateFile)
	OneTime     []OneTimeSeq  // its unused sequences, in file order; Sequence is OneTime[0] (nil when exhausted)
	OnOpen      []string      // hook argv run after a grant; nil when unset
	OnClose     []string      // hook argv run after a close sequence's revoke
	HookTimeout time.Duration // time limit of one hook run

	// MaxGrants is the size of each of the door's grant sets in the
	// kernel (grants.go): how many (address, port) grants of each kind
	// and family it holds at once.
	MaxGrants int
	// Confirm (static doors only) makes a completed knock a pending grant
	// for ConfirmWithin, made a full grant by the kernel once the knocker's
	// connection is established; false grants at once.
	Confirm       bool
	ConfirmWithin time.Duration // 0 unless Confirm
	// FleetGroups are the fleet groups an open of this door is published
	// to (fleet mode, docs/design.md "Fleet"); nil when unset.
	FleetGroups []string
}

// Fleet is the fleet block: this host as a member of a fleet whose
// members open each other's doors through NATS JetStream. Paths are as
// written; package fleet reads the key and members files (LoadConfig).
type Fleet struct {
	Name        string        // the fleet's name, in every record
	Member      string        // this host's member name
	KeyFile     string        // its Ed25519 private key (mode 0600)
	MembersFile string        // members.hcl: every member's public key and rights
	Groups      []string      // the groups whose grants this host applies
	Servers     []string      // NATS URLs
	Creds       string        // NATS credentials file; "" for none
	CA          string        // PEM trust for TLS; "" for the system's
	MaxSkew     time.Duration // clock skew tolerated in issued_at (default 2s)
	// Range is where the block is, for diagnostics of checks made outside
	// package policy (unknown member, key file mode).
	Range hcl.Range
	// At is where each attribute is written, for the same diagnostics.
	At FleetAt
}

// Policy is a validated configuration with defaults applied.
type Policy struct {
	File       string   // the file it was read from, for messages
	Interfaces []string // empty: the interfaces that carry a default route
	Table      string   // nftables table name, family inet
	TableMode  TableMode
	Closed     Closed
	Doors      []Door
	// MetricsListen is where the Prometheus endpoint listens, a validated
	// "IP:port" (netip.AddrPort's form); "" (the default) means none.
	MetricsListen string
	// StateDir holds state that outlives a restart (the SPA replay cache,
	// burned TOTP sequences, used one-time sequences).
	StateDir string
	// Fleet is the fleet block; nil when unset.
	Fleet *Fleet
}

// Door returns the door with the given name, or nil.
func (p *Policy) Door(name string) *Door {
	for i := range p.Doors {
		if p.Doors[i].Name == name {
			return &p.Doors[i]
		}
	}
	return nil
}

// Guarded returns every port that some door opens, sorted and without
// duplicates: the elements of the table's guarded set.
func (p *Policy) Guarded() []PortProto {
	var out []PortProto
	for _, d := range p.Doors {
		out = append(out, d.Open...)
	}
	return sortUniq(out)
}

// KnockPorts returns every port used by a sequence, close sequence or unused
// one-time sequence (TOTP doors' ranges are KnockRanges), sorted
// and without duplicates: what the capture filter must pass.
func (p *Policy) KnockPorts() []PortProto {
	var out []PortProto
	for _, d := range p.Doors {
		out = append(out, d.Sequence...)
		out = append(out, d.CloseSequence...)
		for _, s := range d.OneTime {
			out = append(out, s.Steps...)
		}
	}
	return sortUniq(out)
}

func sortUniq(pp []PortProto) []PortProto {
	slices.SortFunc(pp, PortProto.Compare)
	return slices.Compact(pp)
}

// FormatPorts joins ports in config form: "22/tcp,443/tcp".
func FormatPorts(pp []PortProto) string {
	s := make([]string, len(pp))
	for i, p := range pp {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// Bounds that validation enforces, stated in its error messages.
const (
	MaxSequence   = 32                     // steps in a sequence or close_sequence
	MinSeqTimeout = 100 * time.Millisecond // seq_timeout lower bound
	MaxSeqTimeout = time.Hour              // seq_timeout upper bound
	MinOpenFor    = time.Second            // open_for lower bound
	MaxOpenFor    = 24 * time.Hour         // open_for upper bound
	MinMaxGrants  = 16                     // max_grants lower bound
	MaxMaxGrants  = 1 << 20                // max_grants upper bound
	MinConfirm    = time.Second            // confirm_within lower bound (upper: open_for)

	DefaultSeqTimeout = 5 * time.Second
	DefaultOpenFor    = 30 * time.Second
	DefaultMaxGrants  = 65536
	DefaultConfirm    = 10 * time.Second // confirm_within, or open_for when shorter
	DefaultTable      = "sesame"
	DefaultPath       = "/etc/sesame/sesame.hcl"
)
