# want: 5:15 given twice
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
  tcp_flags = "syn,!syn"
}
