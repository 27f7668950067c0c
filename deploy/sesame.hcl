# /etc/sesame/sesame.hcl: sesame's configuration. See sesame.hcl(5).
#
# As shipped, this file guards nothing: with no door, sesame closes no port
# and cannot lock anyone out. Add a door, check the file, then start:
#
#   sesame check                  # validate; prints what it would guard
#   sesame check --ruleset        # the nftables table it would install
#   systemctl enable --now sesame
#
# Keep a second way in (a console, or an established SSH session) while you
# try a new door for the first time.

# The interfaces to watch for knocks; default: those with a default route.
# interfaces = ["eth0"]

# The nftables table (family inet) sesame owns.
# table = "sesame"

# Guarded ports without a grant: "drop", or "reject" (TCP reset / ICMP
# port unreachable).
# closed = "drop"

# Prometheus metrics; off unless set. Keep it on localhost.
# metrics_listen = "127.0.0.1:9813"

# A door: knock on the sequence within seq_timeout, and the open ports
# accept your address for open_for. Pick your own ports: these are examples.
#
# door "ssh" {
#   sequence       = ["7000/tcp", "8000/udp", "9000/tcp"]
#   seq_timeout    = "5s"
#   tcp_flags      = "syn,!ack"
#   open           = ["22/tcp"]
#   open_for       = "30s"
#   close_sequence = ["9000/tcp", "8000/udp", "7000/tcp"]
# }
