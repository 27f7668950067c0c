# want: 2:10 "deny" is not a closed mode
closed = "deny"
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
