// Package logevent names the events of sesame's log: the message of every
// line the daemon writes (slog's msg, MESSAGE under journald). One event,
// one line, with fields; the names are kebab-case and stable: tests, the
// benchmark and users' alerting match on them. docs/design.md ("Logs")
// lists them with their fields and levels.
package logevent

// Lifecycle.
const (
	Ready         = "ready"          // serving: table, interfaces, doors, closed
	Stopping      = "stopping"       // shutting down; the table and grants stay
	Reloaded      = "reloaded"       // SIGHUP: the new policy is in force
	ReloadFailed  = "reload-failed"  // SIGHUP: the previous policy stays
	RestoreFailed = "restore-failed" // a failed reload could not put the previous capture back
	ConfigWarning = "config-warning" // a warning of the config (scan risks...) at start or reload
	NeedsRestart  = "needs-restart"  // a reload changed what only a restart applies (metrics_listen)
	Metrics       = "metrics"        // the metrics endpoint listens
	MetricsFailed = "metrics-failed" // the metrics server stopped with an error
)

// Knock matcher decisions (knock.Kind), and the opens of every kind.
const (
	Stage   = "stage"   // debug: a step matched
	Open    = "open"    // a grant landed: a knock, TOTP, one-time or SPA
	Close   = "close"   // a close sequence revoked the source's grants
	Reset   = "reset"   // an out-of-order packet dropped a source's progress
	Timeout = "timeout" // debug: seq_timeout passed
	// LogSummary counts the spoofable lines that the rate limit held back.
	LogSummary = "log-summary"
)

// Grants and the nftables table.
const (
	GrantApplied       = "grant-applied"      // debug: a grant's share of the latency (us)
	GrantFailed        = "grant-failed"       // a grant did not land (reason: set-full, ...)
	RevokeFailed       = "revoke-failed"      // a close sequence's revoke did not land
	GrantSetFull       = "grant-set-full"     // a door's set is full (max_grants)
	ApplyRetry         = "apply-retry"        // an nftables transaction failed; retried once
	GrantSetsRebuilt   = "grant-sets-rebuilt" // startup or reload recreated sets whose size changed
	PendingFlushed     = "pending-flushed"    // a pending set full of unknown elements was flushed
	TableChanged       = "table-changed"      // the table was changed under sesame; restoring it
	TableRestored      = "table-restored"     // ... and put back
	TableCheckFailed   = "table-check-failed"
	TableRestoreFailed = "table-restore-failed"
	TablePolling       = "table-polling" // the nftables monitor is unavailable: the table is polled
	// DoctorFinding is one finding of `sesame doctor`, logged at startup:
	// kind, port, where, detail, fix.
	DoctorFinding = "doctor-finding"
	DoctorFailed  = "doctor-failed" // the startup check could not read the ruleset
)

// Capture sockets and interfaces.
const (
	CaptureStats        = "capture-stats"        // SIGUSR1: packets, drops, truncated per socket
	CaptureStatsFailed  = "capture-stats-failed" // a socket's counters could not be read
	CaptureReadFailed   = "capture-read-failed"  // a socket's reader stopped; it is reopened
	CaptureFilterLost   = "capture-filter-lost"  // a socket's filter could not be restored; reopening
	CaptureReopenFailed = "capture-reopen-failed"
	CaptureRebound      = "capture-rebound" // an interface came back under another index
	InterfaceGone       = "interface-gone"  // capture waits for the interface to come back
	InterfaceDown       = "interface-down"  // capture waits for the link to come up
	InterfaceUp         = "interface-up"    // capture resumed
	LinkPolling         = "link-polling"    // address and link events are unavailable: they are polled
)

// Door kinds' own state.
const (
	OneTimeUsed         = "one-time-used"
	OneTimeLow          = "one-time-low"
	OneTimeExhausted    = "one-time-exhausted"
	OneTimeRefused      = "one-time-refused"
	OneTimeMarkFailed   = "one-time-mark-failed"
	OneTimeUnmarkFailed = "one-time-unmark-failed"
	OneTimeRestored     = "one-time-restored"
	TOTPBurnsRestored   = "totp-burns-restored" // debug
	TOTPBurnsUnreadable = "totp-burns-unreadable"
	TOTPBurnsNotSaved   = "totp-burns-not-saved"
	SPARefused          = "spa-refused" // a packet on an SPA port that grants nothing (reason)
	SPAReplayUnreadable = "spa-replay-unreadable"
	SPAReplayNotSaved   = "spa-replay-not-saved"
)

// Hooks (on_open, on_close).
const (
	Hook        = "hook"         // a hook ran and exited 0
	HookFailed  = "hook-failed"  // exited non-zero or could not start
	HookTimeout = "hook-timeout" // killed at its time limit
	HookDropped = "hook-dropped" // the hook queue was full
	HookSkipped = "hook-skipped" // its grant or revoke did not land
)

// Fleet mode: records received from other members, and this host's own.
const (
	FleetOpen           = "fleet-open"             // a member's record opened a door here (origin, id)
	FleetClose          = "fleet-close"            // a member's close removed what its open added here
	FleetRefused        = "fleet-refused"          // a record was refused (reason; rate-limited)
	FleetDropped        = "fleet-dropped"          // the receive queue was full: records lost here (rate-limited)
	FleetUnsynced       = "fleet-clock-unsynced"   // the kernel says the clock is unsynchronised: no fleet grant is applied
	FleetSynced         = "fleet-clock-synced"     // the clock is synchronised again
	FleetClockCheckOff  = "fleet-clock-check-off"  // SESAME_FLEET_SKIP_CLOCK_CHECK=1: the clock's synchronisation is not checked (tests, demo)
	FleetPublishDropped = "fleet-publish-dropped"  // the publish queue was full: a local open was not published
	FleetStatusNotSaved = "fleet-status-not-saved" // state_dir/fleet-status.json could not be written
)

// The fleet link (package fleet/natslink): the connection to the NATS
// cluster, its buckets and the records it publishes.
const (
	FleetConnected     = "fleet-connected"      // server; connected (again) to the cluster
	FleetDisconnected  = "fleet-disconnected"   // server, err; reconnects in the background
	FleetCatchUp       = "fleet-catch-up"       // group, records, took: live records read after a (re)connect
	FleetPublishFailed = "fleet-publish-failed" // group, id, err: a record could not be published before its deadline
	FleetBucketCreated = "fleet-bucket-created" // bucket, replicas, ttl: a missing group bucket was created
	FleetBucketError   = "fleet-bucket-error"   // bucket, err, [need]: a bucket cannot be bound, created or is misconfigured
	FleetDenied        = "fleet-denied"         // err: the server refused a publish or subscribe (permissions)
)

// All lists every event, for docs and tests.
var All = []string{
	Ready, Stopping, Reloaded, ReloadFailed, RestoreFailed, ConfigWarning, NeedsRestart, Metrics, MetricsFailed,
	Stage, Open, Close, Reset, Timeout, LogSummary,
	GrantApplied, GrantFailed, RevokeFailed, GrantSetFull, ApplyRetry, GrantSetsRebuilt, PendingFlushed,
	TableChanged, TableRestored, TableCheckFailed, TableRestoreFailed, TablePolling, DoctorFinding, DoctorFailed,
	CaptureStats, CaptureStatsFailed, CaptureReadFailed, CaptureFilterLost, CaptureReopenFailed, CaptureRebound,
	InterfaceGone, InterfaceDown, InterfaceUp, LinkPolling,
	OneTimeUsed, OneTimeLow, OneTimeExhausted, OneTimeRefused, OneTimeMarkFailed, OneTimeUnmarkFailed, OneTimeRestored,
	TOTPBurnsRestored, TOTPBurnsUnreadable, TOTPBurnsNotSaved, SPARefused, SPAReplayUnreadable, SPAReplayNotSaved,
	Hook, HookFailed, HookTimeout, HookDropped, HookSkipped,
	FleetOpen, FleetClose, FleetRefused, FleetDropped, FleetUnsynced, FleetSynced, FleetClockCheckOff, FleetPublishDropped, FleetStatusNotSaved,
	FleetConnected, FleetDisconnected, FleetCatchUp, FleetPublishFailed, FleetBucketCreated, FleetBucketError, FleetDenied,
}
