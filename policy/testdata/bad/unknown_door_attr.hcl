# want: 5:3 Did you mean "open_for"
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
  open_four = "30s"
}
