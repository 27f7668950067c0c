# want: 5:27 this close sequence could never complete
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
  close_sequence = [9000, 9000, 7000]
}
