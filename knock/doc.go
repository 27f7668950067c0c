// Package knock is sesame's matcher: the pure core that follows each source
// address through each door's knock sequences and decides when a door opens
// or closes. It makes no syscalls, starts no goroutines, takes no locks and
// never reads the clock: Observe(hit, now) and Expire(now) are given the
// time, so tests drive it with a fake clock.
//
// # State machine
//
// Every door has an open sequence and, optionally, a close sequence; each is
// a machine of its own, run separately for every source address (IPv4, or
// IPv6 with 4-in-6 unmapped). A hit counts for a machine when its protocol
// is one that the machine's steps use and, for TCP, its flags pass the
// door's tcp_flags filter; any other hit does not reach the machine at all.
// Every hit that counts is followed, whatever port it went to: that is what
// keeps a sweep (ascending, descending or random, of any port range) from
// walking a sequence, and why package capture passes every packet that
// could count, at any port (capture.Filter). For a sequence of n steps
// s1..sn, a source's state is "idle" (no entry) or "at k" (steps s1..sk
// matched, 1 ≤ k < n):
//
//	                    s1 / Stage 1 (or Open when n = 1)
//	    +----------------------------------------------+
//	    |                                              v
//	+------+   any other hit / Reset             +------------+ --+ s(k+1), k+1 < n: Stage k+1
//	| idle | <---------------------------------- |    at k    |   | sk again: ignored (a repeat)
//	+------+   now-first > seq_timeout / Timeout | 1 <= k < n | <-+ s1: back to 1, Stage 1
//	  ^    <------------------------------------ +------------+
//	  |            (on a late hit, or by Expire)       |
//	  +------------------------------------------------+
//	                 sn when k = n-1 / Open (or Close)
//
// The order of the checks for each hit is: protocol and flag filter (rule
// 1); timeout (rule 2: a late hit drops the entry with Timeout, then counts
// as if there were none); the expected next step advances (rule 3); a
// repeat of the step just matched (a retransmitted SYN) is ignored (rule
// 4); s1 restarts at stage 1 (rule 5: a restart, not a Reset; a 1-step
// sequence opens at once); anything else that counts resets (rule 6), at
// any port: WrongPort when the port is a knock port of any door, OtherPort
// otherwise; with no entry, a hit that is not s1 does nothing (rule 7).
// seq_timeout runs from the first hit.
//
// So a scan that knows nothing walks a sequence only if it sends the steps
// back to back, in order. For a scan that sends each of the N = 65535 ports
// of one protocol once, that takes s1..sn adjacent and in order: certain
// for an ascending (descending) sweep when the steps are consecutive
// ascending (descending) ports, and otherwise, for a random order, the odds
// of policy.ScanOdds (1 in N for 2 steps, 1 in N(N-1) for 3).
//
// # Bounded state
//
// Entries live in a preallocated array of Config.MaxEntries with a free list,
// indexed by a hash table of their own (index.go: open addressing, linear
// probing, deletion by backward shift, keyed with a random seed per matcher so
// that spoofed sources cannot be chosen to collide) whose slots double as
// entries are taken, up to twice the cap (1 MiB at the default cap). The
// array's pages and the index become resident only as sources are tracked.
// Each hit costs at most one index lookup per sequence, and once the table
// has been full no hit allocates, evictions included. Entries are
// threaded on two lists in order of last change, one for stage 1 and one for
// further along. When the array is full, a new entry evicts the oldest entry
// at stage 1, and only when there is none the oldest one further along: a
// spoofed flood on a first port (which creates only stage-1 entries) cannot
// push out a source that is further along. Eviction is silent, counted in
// Stats.Evicted. Each sequence also keeps its entries in order of first hit,
// which makes Expire an exact sweep that stops at the first entry still in
// time.
package knock
