package main

import sd "github.com/coreos/go-systemd/v22/daemon"

// sdNotify sends a state to systemd when it runs us as Type=notify
// ($NOTIFY_SOCKET set); otherwise it does nothing.
func sdNotify(state string) {
	_, _ = sd.SdNotify(false, state)
}
