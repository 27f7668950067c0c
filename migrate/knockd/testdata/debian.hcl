# sesame config converted from /etc/knockd.conf by `sesame convert`.
# Review it, then validate it: sesame check -c FILE

# UseSyslog (line 2): sesame logs one line per event to stderr; under systemd they go to the journal (and on to syslog if journald forwards).

# [openSSH] (line 4)
# [closeSSH] (line 10) deletes the rule this door adds: it is this door's close_sequence.
door "openSSH" {
  sequence       = ["7000/tcp", "8000/tcp", "9000/tcp"]
  seq_timeout    = "5s"
  tcp_flags      = "syn"
  open           = ["22/tcp"]
  open_for       = "1h"
  close_sequence = ["9000/tcp", "8000/tcp", "7000/tcp"]
}

# [closeSSH] (line 10) is the close_sequence of door "openSSH".

# [openHTTPS] (line 16)
# Not converted: it opens no port (a sesame door grants ports; hooks alone are not a door).
# door "openHTTPS" {
#   sequence       = ["12345/tcp", "54321/tcp", "24680/tcp", "13579/tcp"]
#   seq_timeout    = "5s"
#   tcp_flags      = "syn"
#   on_open        = ["/usr/local/sbin/knock_add", "-i", "-c", "INPUT", "-p", "tcp", "-d", "443", "-f", "{ip}"]
# }
