# want: 6:15 tcp_flags only filters tcp steps
# severity: warning
door "ssh" {
  sequence = ["7000/udp", "8000/udp", "9000/udp"]
  open = ["22/tcp"]
  tcp_flags = "syn"
}
