package policy

import (
	"fmt"
	"strings"

	"github.com/sesame-knock/sesame/onetime"
)

// A one-time door (KindOneTime) is knockd's One_Time_Sequences: its
// one_time_sequences file holds one sequence per line, each usable once, in
// order (package onetime). Door.Sequence is the next unused one; the daemon
// records each used line in the door's state file before its grant
// (daemon/onetime.go) and moves the door to the next.

// oneTime reads a door's one_time_sequences file.
func (v *validator) oneTime(rd *rawDoor, d *Door) {
	s, ok := v.str(rd.OneTime, allowOneTime)
	if !ok {
		return
	}
	rng := rd.OneTime.Expr.Range()
	path := v.resolve(s)
	seqs, err := onetime.Read(path)
	if err != nil {
		v.add(errorf(rng, "Invalid one_time_sequences", "Door %q: %s: %v. one_time_sequences is %s.", rd.Name, path, err, allowOneTime))
		return
	}
	d.OneTimeFile = path
	if !validDoorName(rd.Name) {
		return // reported; the name makes the state file's name
	}
	d.OneTimeUsed = onetime.StateFile(v.stateDirPath, rd.Name)
	if err := onetime.CheckWritable(v.stateDirPath); err != nil {
		v.add(errorf(rng, "One-time state not writable", "Door %q records each sequence it grants in %s before the grant, but %v: the door could never open. Make state_dir writable for the daemon (the packaged unit's StateDirectory= provides /var/lib/sesame; ProtectSystem=strict makes everything else read-only) or set state_dir. %s itself is only read.", rd.Name, d.OneTimeUsed, err, path))
		return
	}
	used, err := onetime.ReadUsed(d.OneTimeUsed)
	if err != nil {
		v.add(errorf(rng, "Unreadable one-time state", "Door %q: %v. That file records which sequences of %s were used; without it sesame cannot tell, so the door stays shut. Restore it, or delete it to make every uncommented line usable again.", rd.Name, err, path))
		return
	}
	for _, sq := range seqs {
		key := sq.Key()
		if used[key] {
			continue
		}
		used[key] = true // a repeated line is the same sequence: once
		o := OneTimeSeq{Line: sq.Line, Key: key}
		for _, st := range sq.Steps {
			p, _ := ParseProto(st.Proto)
			o.Steps = append(o.Steps, PortProto{Port: st.Port, Proto: p})
		}
		d.OneTime = append(d.OneTime, o)
	}
	if len(d.OneTime) == 0 {
		v.add(warnf(rng, "One-time sequences exhausted", "%s has no unused sequence (used ones are recorded in %s): door %q refuses every knock until you add sequences and reload (SIGHUP).", path, d.OneTimeUsed, rd.Name))
		return
	}
	d.Sequence = d.OneTime[0].Steps
}

// oneTimeSummary: "once: one-time 2 left in FILE, next 7501/tcp,... within
// 5s, opens 2223/tcp for 30s", or "0 left in FILE (exhausted)".
func (d *Door) oneTimeSummary(b *strings.Builder) {
	fmt.Fprintf(b, "%s: one-time %d left in %s", d.Name, len(d.OneTime), d.OneTimeFile)
	if len(d.OneTime) == 0 {
		b.WriteString(" (exhausted)")
	} else {
		fmt.Fprintf(b, ", next %s within %s", FormatPorts(d.Sequence), fmtDur(d.SeqTimeout))
	}
	d.knockTail(b)
}

// oneTimeNotGuarded: no step of an unused sequence is a port that a door
// opens.
func (v *validator) oneTimeNotGuarded(rd *rawDoor, d *Door, guarded map[PortProto]opener) {
	if rd.OneTime == nil {
		return
	}
	for _, s := range d.OneTime {
		for _, pp := range s.Steps {
			if o, bad := guarded[pp]; bad {
				v.add(errorf(rd.OneTime.Expr.Range(), "One-time sequence uses a guarded port", "Line %d of %s knocks on %s, which door %q opens: a guarded service port cannot be a knock port, since every connection to it would count as a knock. Use a port that no door opens.", s.Line, d.OneTimeFile, pp, o.door))
				return
			}
		}
	}
}
