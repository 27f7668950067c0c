package policy

import (
	"fmt"
	"strings"
)

// A static door (KindStatic) knocks on a fixed sequence: the sequence,
// seq_timeout, tcp_flags, close_sequence and confirm attributes of the door
// block (door.go validates them; cross.go checks that sequences are
// unique, no prefix of each other and not guarded ports).

// staticSummary: "ssh: knock 7000/tcp,... within 10s (tcp flags ...),
// opens 22/tcp for 1m once connected within 15s, close ...".
func (d *Door) staticSummary(b *strings.Builder) {
	fmt.Fprintf(b, "%s: knock %s within %s", d.Name, FormatPorts(d.Sequence), fmtDur(d.SeqTimeout))
	d.knockTail(b)
}

// knockTail writes what a knocked door adds after its sequence: its TCP
// flags when not the default, what it opens, confirm and close_sequence.
func (d *Door) knockTail(b *strings.Builder) {
	if d.TCPFlags != DefaultTCPFlags {
		fmt.Fprintf(b, " (tcp flags %s)", d.TCPFlags)
	}
	fmt.Fprintf(b, ", %s for %s", d.opens(""), fmtDur(d.OpenFor))
	if d.Confirm {
		fmt.Fprintf(b, " once connected within %s", fmtDur(d.ConfirmWithin))
	}
	if d.CloseSequence != nil {
		fmt.Fprintf(b, ", close %s", FormatPorts(d.CloseSequence))
	}
}
