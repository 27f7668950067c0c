# want: 5:14 write "90s"
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
  open_for = "90"
}
