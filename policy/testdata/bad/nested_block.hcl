# want: 4:3 Blocks of type "open" are not expected
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open {
  }
}
