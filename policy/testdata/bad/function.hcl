# want: 4:10 Function calls not allowed
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = concat([22])
}
