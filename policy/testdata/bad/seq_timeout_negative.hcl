# want: 5:17 outside 100ms to 1h
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
  seq_timeout = "-5s"
}
