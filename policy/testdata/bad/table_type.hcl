# want: 2:9 table must be a string, not a number
table = 5
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
