# sesame config converted from /etc/knockd.conf by `sesame convert`.
# Review it, then validate it: sesame check -c FILE

# UseSyslog (line 4): sesame logs one line per event to stderr; under systemd they go to the journal (and on to syslog if journald forwards).

# [oneStep] (line 6)
door "oneStep" {
  sequence       = ["7000/tcp"]
  seq_timeout    = "25s"
  open           = ["22/tcp"]
  open_for       = "30s"
}

# [twoSteps] (line 12)
door "twoSteps" {
  sequence       = ["7100/udp", "8100/udp"]
  seq_timeout    = "25s"
  open           = ["2222/tcp"]
  open_for       = "30s"
}

# [finSweep] (line 18)
door "finSweep" {
  sequence       = ["12000/tcp", "13000/tcp", "14000/tcp"]
  seq_timeout    = "25s"
  tcp_flags      = "fin,!ack"
  open           = ["2223/tcp"]
  open_for       = "30s"
}

# [descending] (line 25)
door "descending" {
  sequence       = ["9003/tcp", "9002/tcp", "9001/tcp"]
  seq_timeout    = "25s"
  tcp_flags      = "syn"
  open           = ["2224/tcp"]
  open_for       = "30s"
}
