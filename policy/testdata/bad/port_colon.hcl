# want: 3:23 write "8000/udp"
door "ssh" {
  sequence = ["7000", "8000:udp", "9000"]
  open = ["22/tcp"]
}
