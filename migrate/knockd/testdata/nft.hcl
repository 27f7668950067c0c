# sesame config converted from /etc/knockd.conf by `sesame convert`.
# Review it, then validate it: sesame check -c FILE

# LogFile = /var/log/knockd.log (line 2): not converted; sesame logs to stderr (the journal under systemd).
# PidFile = /run/knockd.pid (line 3): not converted; sesame runs in the foreground under systemd and writes no pid file.

# [openDNS] (line 5)
door "openDNS" {
  sequence       = ["7101/udp", "7102/udp", "7103/udp"]
  seq_timeout    = "3s"
  open           = ["53/udp"]
  open_for       = "2m"
}

# [openAll] (line 12)
# Not converted: it opens no port (a sesame door grants ports; hooks alone are not a door).
# door "openAll" {
#   sequence       = ["7201/tcp", "7202/tcp", "7203/tcp"]
#   seq_timeout    = "25s"
# }
