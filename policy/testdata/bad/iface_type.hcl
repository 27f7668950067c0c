# want: 2:15 An interface name must be a string
interfaces = [1]
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
