# want: 2:14 interfaces must be a list, not a string
interfaces = "eth0"
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
