# want: 5:14 must be a string, not a list
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
  open_for = ["30s"]
}
