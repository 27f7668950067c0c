# want: 3:35 ignored as a retransmit, so this door could never open
door "ssh" {
  sequence = ["7000", "8000/udp", "8000/udp", "9000"]
  open = ["22/tcp"]
}
