# want: 7:14 has the same sequence
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
door "web" {
  sequence = ["7000/tcp", "8000/udp", 9000]
  open = [443]
}
