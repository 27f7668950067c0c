# want: 6:15 does not pass
# severity: warning
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
  tcp_flags = "ack"
}
