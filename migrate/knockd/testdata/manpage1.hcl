# sesame config converted from /etc/knockd.conf by `sesame convert`.
# Review it, then validate it: sesame check -c FILE

# LogFile = /var/log/knockd.log (line 2): not converted; sesame logs to stderr (the journal under systemd).

# [openSSH] (line 4)
# [closeSSH] (line 10) deletes the rule this door adds: it is this door's close_sequence.
door "openSSH" {
  sequence       = ["7000/tcp", "8000/tcp", "9000/tcp"]
  seq_timeout    = "10s"
  tcp_flags      = "syn"
  open           = ["22/tcp"]
  open_for       = "1h"
  close_sequence = ["9000/tcp", "8000/tcp", "7000/tcp"]
}

# [closeSSH] (line 10) is the close_sequence of door "openSSH".
