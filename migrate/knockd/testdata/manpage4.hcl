# sesame config converted from /etc/knockd.conf by `sesame convert`.
# Review it, then validate it: sesame check -c FILE

# LogFile = /var/log/knockd.log (line 2): not converted; sesame logs to stderr (the journal under systemd).

# [opencloseSMTP] (line 4)
# one_time_sequences (line 5): sesame reads knockd's file format (lines knockd commented out stay used) and records each sequence once used in state_dir; it never writes the file.
door "opencloseSMTP" {
  one_time_sequences = "/etc/knockd/smtp_sequences"
  seq_timeout    = "15s"
  tcp_flags      = "fin,!ack"
  open           = ["25/tcp"]
  open_for       = "5s"
}
