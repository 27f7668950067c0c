# want: 2:1 open is required
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
}
