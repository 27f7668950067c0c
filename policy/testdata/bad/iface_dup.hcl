# want: 2:30 "eth0" is already listed
interfaces = ["eth0", "wg0", "eth0"]
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
