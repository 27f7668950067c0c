# want: 2:1 Did you mean "door"
doors "x" {
}
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
