# want: 5:27 in close_sequence is opened by door
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
  close_sequence = [9000, 22, 7000]
}
