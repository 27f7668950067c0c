# sesame config converted from /etc/knockd.conf by `sesame convert`.
# Review it, then validate it: sesame check -c FILE

# LogFile = /var/log/knockd.log (line 2): not converted; sesame logs to stderr (the journal under systemd).

# [opencloseSMTP] (line 4)
# one_time_sequences (line 5) needs sesame's one-time sequence support (issue #5): uncomment the attribute below once `sesame check` accepts it.
# Not converted: it has no fixed sequence (one_time_sequences only).
# door "opencloseSMTP" {
#   seq_timeout    = "15s"
#   tcp_flags      = "fin,!ack"
#   open           = ["25/tcp"]
#   open_for       = "5s"
#   # one_time_sequences = "/etc/knockd/smtp_sequences"
# }
