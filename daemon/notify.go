package daemon

import (
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// sd_notify(3) states. The daemon only produces them; the caller sends them
// (cmd/sesame through go-systemd), so this package needs no systemd.
const (
	notifyReady    = "READY=1"
	notifyStopping = "STOPPING=1"
)

// notifyReloading is RELOADING=1 with the CLOCK_MONOTONIC timestamp that
// systemd ≥ 253 wants beside it (older ones ignore it).
func notifyReloading() string {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	usec := ts.Nano() / int64(time.Microsecond)
	return "RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(usec, 10)
}

func (r *reloader) notifyf(state string) {
	if r.notify != nil {
		r.notify(state)
	}
}
