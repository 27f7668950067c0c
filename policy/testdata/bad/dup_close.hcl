# want: 10:20 has the same close_sequence
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
  close_sequence = [9, 8, 7]
}
door "web" {
  sequence = [1001, 1002, 1003]
  open = [443]
  close_sequence = [9, 8, 7]
}
