# want: 5:20 one knock cannot both open and close
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
  close_sequence = [7000, "8000/udp", 9000]
}
