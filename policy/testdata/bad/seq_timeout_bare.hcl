# want: 5:17 write "30s"
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
  seq_timeout = 30
}
