# sesame config converted from /etc/knockd.conf by `sesame convert`.
# Review it, then validate it: sesame check -c FILE

# LogFile = /var/log/knockd.log (line 2): not converted; sesame logs to stderr (the journal under systemd).

# [opencloseSSH] (line 4)
# Not converted: it opens no port (a sesame door grants ports; hooks alone are not a door).
# door "opencloseSSH" {
#   sequence       = ["2222/udp", "3333/tcp", "4444/udp"]
#   seq_timeout    = "15s"
#   tcp_flags      = "syn,ack"
# }
