# want: 5:17 from 100ms to 1h
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
  seq_timeout = "50ms"
}
