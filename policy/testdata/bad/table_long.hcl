# want: 2:9 at most 64 characters
table = "ttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttttt"
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
