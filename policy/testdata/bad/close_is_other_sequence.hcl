# want: 5:20 is the sequence of door "web"
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
  close_sequence = [1001, 1002, 1003]
}
door "web" {
  sequence = [1001, 1002, 1003]
  open = [443]
}
