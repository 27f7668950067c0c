# want: 5:20 close_sequence needs at least one step
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
  close_sequence = []
}
