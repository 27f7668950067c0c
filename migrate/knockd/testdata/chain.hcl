# sesame config converted from /etc/knockd.conf by `sesame convert`.
# Review it, then validate it: sesame check -c FILE

# UseSyslog (line 4): sesame logs one line per event to stderr; under systemd they go to the journal (and on to syslog if journald forwards).

# [openWeb] (line 6)
# [closeWeb] (line 12) deletes the rule this door adds: it is this door's close_sequence.
door "openWeb" {
  sequence       = ["5001/udp", "5002/udp", "5003/tcp", "5004/tcp"]
  seq_timeout    = "8s"
  tcp_flags      = "syn,!rst,!ack"
  open           = ["80/tcp", "443/tcp"]
  open_for       = "1h"
  close_sequence = ["5004/tcp", "5003/tcp", "5002/udp", "5001/udp"]
  on_open        = ["/usr/bin/logger", "-t", "knockd", "web opened for {ip}"]
  on_close       = ["/usr/bin/logger", "-t", "knockd", "web closed for {ip}"]
}

# [closeWeb] (line 12) is the close_sequence of door "openWeb".

# [wol] (line 18)
# target = 192.0.2.10 (line 20): not converted; sesame counts knocks to any of this host's own addresses.
# Not converted: it opens no port (a sesame door grants ports; hooks alone are not a door).
# door "wol" {
#   sequence       = ["6001/tcp", "6002/tcp", "6003/tcp"]
#   seq_timeout    = "25s"
#   on_open        = ["/usr/sbin/etherwake", "00:11:22:33:44:55"]
# }
