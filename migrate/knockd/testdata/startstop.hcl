# sesame config converted from /etc/knockd.conf by `sesame convert`.
# Review it, then validate it: sesame check -c FILE

# UseSyslog (line 4): sesame logs one line per event to stderr; under systemd they go to the journal (and on to syslog if journald forwards).
# Interface (line 5)
interfaces = ["eth1"]

# [SSH] (line 7)
door "SSH" {
  sequence       = ["7000/tcp", "8000/udp", "9000/tcp"]
  seq_timeout    = "5s"
  tcp_flags      = "syn,!ack"
  open           = ["22/tcp"]
  open_for       = "30s"
}
