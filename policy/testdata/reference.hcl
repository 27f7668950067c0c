# sesame reference configuration: every attribute, with its default and
# bounds. Install as /etc/sesame/sesame.hcl and check it with `sesame check`.
#
# Ports are written "7000" or 7000 (tcp), "7000/tcp" or "7000/udp".
# Durations are Go durations with a unit: "500ms", "5s", "1m30s", "2h".

# Network interfaces to listen for knocks on (Linux names, 1 to 15 bytes,
# each listed once). Default: the interfaces that carry a default route.
interfaces = ["eth0", "wg0"]

# nftables table (family inet) that sesame owns: a letter, then letters,
# digits, "_" or "-", at most 64 characters. Default: "sesame".
table = "sesame"

# "full" (default): sesame owns the table, its sets and its input chain.
# "sets": the table (named above, required) is yours; sesame keeps only its
# sets in it, marked with the comment "managed by sesame", and never touches
# a chain: paste the rules of `sesame check --ruleset` into your own.
table_mode = "full"

# What happens to packets for a guarded port without a grant:
# "drop" (default, silent) or "reject" (TCP reset / ICMP port unreachable).
closed = "reject"

# A door: a knock sequence and the ports it opens. The name (letters,
# digits, "_", "." and "-", at most 64) appears in logs and in the comment of
# each grant. Names are unique, and so are sequences.
door "ssh" {
  # Required: 1 to 32 steps, hit in this order. A step may not repeat the
  # step before it (a repeat is ignored as a retransmit). Use 3 or more steps:
  # shorter sequences are found by a port scan. Knock ports may not be ports
  # that any door opens.
  sequence = ["7000/tcp", "8000/udp", 9000]

  # Time allowed for the whole sequence, from its first hit.
  # Default "5s"; from 100ms to 1h.
  seq_timeout = "10s"

  # Which TCP packets count as a hit on a tcp step, in knockd syntax: a
  # comma-separated list of fin, syn, rst, psh, ack, urg, each optionally
  # negated with "!". Default "syn,!ack" (a bare SYN, as a connect sends).
  tcp_flags = "syn,!ack,!rst"

  # The ports of this host a correct knock opens for the knocking address.
  # A door has open, forward, or both.
  open = ["22/tcp"]

  # Forwarded services a correct knock opens for the knocking address, in
  # the forward chain (containers, VMs, routed hosts). "PORT/PROTO" is a
  # port of this host that is DNATed onward (Docker's -p 8080:80);
  # "ADDR:PORT/PROTO" a routed backend ("[ADDR]:PORT/PROTO" for IPv6).
  # Matched on the connection's original destination (before DNAT), only
  # for traffic that enters on the interfaces above, so containers talking
  # to each other are untouched. A forward grant opens every target of the
  # door and never a port in open; a grant of open never a target here.
  forward = ["8080/tcp", "192.0.2.10:22/tcp", "[2001:db8:5::10]:443/tcp"]

  # How long a grant lasts (the kernel expires it; established connections
  # survive). Default "30s"; from 1s to 24h.
  open_for = "1m"

  # Optional: a sequence that revokes this address's grant early. Same rules
  # as sequence; it must differ from every sequence and close_sequence.
  close_sequence = ["9000/tcp", "8000/udp", "7000/tcp"]

  # Return routability (doors with a fixed sequence only: anyone who has
  # seen the knock can replay it from spoofed addresses). With confirm on,
  # a completed knock is a pending grant for confirm_within; the kernel
  # turns it into a grant for open_for once the knocker's connection is
  # established (TCP: the handshake a spoofer cannot complete; UDP: a
  # second packet after the server answered). Pending grants are the first
  # to go when the door's room runs out, so a flood of spoofed knocks
  # cannot crowd out a real one. Default true; confirm_within default
  # "10s" (or open_for when shorter), from 1s to open_for.
  confirm        = true
  confirm_within = "15s"

  # Room per door: each of its sets (open, pending, manual; one per address
  # family) holds at most this many (address, port) grants. A full door
  # refuses new grants until some expire, without touching other doors.
  # Default 65536; from 16 to 1048576.
  max_grants = 4096

  # Optional hooks: a program and its arguments, run without a shell (so
  # the program is an absolute path) after a grant is applied (on_open) or
  # after a close sequence revokes it (on_close; not when the kernel expires
  # a grant). Arguments may use {ip} (the knocker's address), {door} and
  # {ports} ("22/tcp"). Hooks run in a small worker pool: a slow or failing
  # hook never delays a grant; its exit status and output are logged.
  on_open  = ["/usr/bin/logger", "-t", "sesame", "{door} opened {ports} for {ip}"]
  on_close = ["/usr/bin/logger", "-t", "sesame", "{door} closed for {ip}"]

  # Time limit of one hook run; then it is killed. Default "10s"; from
  # 100ms to 1m.
  hook_timeout = "5s"
}

# A second door with only the required attributes and defaults for the rest.
door "web-admin" {
  sequence = ["7100/udp", "7200/udp", "7300/udp", "7400/tcp"]
  open     = ["443/tcp", "8443", "51820/udp"]
}

# A TOTP door: no fixed sequence. Each client derives, from its own secret
# and the time, `length` distinct ports in `port_range` (docs/TOTP.md). A
# sequence works once, within `skew` steps of now. The per-knock entropy
# must be at least 32 bits (log2 of the ordered sequences of distinct ports).
door "vault" {
  totp {
    port_range = "20000-29999" # default "20000-29999"; must not hold an opened port
    length     = 4             # default 4; from 2 to 32
    step       = "30s"         # default "30s"; whole seconds, from 5s to 1h
    skew       = 1             # default 1; steps accepted either side of now, 0 to 10
    protocol   = "tcp"         # default "tcp"; or "udp"
  }
  # Each client: a name (in logs: client=alice) and a secret file, base32,
  # at least 128 bits, mode 0600 (sesame keygen -o FILE). A relative path is
  # relative to this file's directory.
  client "alice" { secret_file = "secrets/alice.key" }
  client "bob"   { secret_file = "secrets/bob.key" }
  open     = ["2222/tcp"]
  open_for = "30s"
}

# A one-time door (knockd's One_Time_Sequences): the file holds one
# sequence per line; each works once, in order. sesame only reads the
# file: the used ones are recorded in state_dir (one-time-once); lines
# commented out are skipped. SIGHUP re-reads it.
door "once" {
  one_time_sequences = "reference.seqs"
  open               = ["2223/tcp"]
}

# An SPA door (single packet authorization, compatible with fwknop 2.6
# clients: the fwknop command line client and the phone apps). One UDP
# packet, encrypted and authenticated with a client's keys, asks for some
# of the ports in open. The SPA port is never opened as a socket: nothing
# answers a scan. A door has exactly one of sequence, a totp block,
# one_time_sequences or an spa block.
door "spa" {
  spa {
    port    = 62201  # default 62201 (UDP); not a knock port nor an opened port
    max_age = "120s" # default "2m"; packet timestamp window either side of now, 10s to 1h
  }
  # Each client: a name (in logs: client=alice) and a key file in
  # `fwknop --key-gen` format (KEY_BASE64, HMAC_KEY_BASE64), mode 0600
  # (sesame keygen --spa -o FILE makes one and prints the client's
  # ~/.fwknoprc stanza).
  client "alice" {
    key_file       = "secrets/alice.spa"
    hmac_digest    = "sha256" # default sha256; md5 sha1 sha256 sha384 sha512 sha3_256 sha3_512
    allow_other_ip = false    # default false: grant the packet's source address only
  }
  open         = ["22/tcp", "443/tcp"] # the most a packet may ask for
  open_for     = "30s"                 # a type 1 packet's grant
  max_open_for = "5m"                  # cap on a client-requested timeout (fwknop -f); default 5m
}

# Where sesame keeps state across restarts (the SPA replay cache, burned
# TOTP sequences, used one-time sequences); the daemon must be able to
# write it. Default "/var/lib/sesame" (the systemd unit's StateDirectory).
state_dir = "/var/lib/sesame"
