# want: 2:23 it is reserved
interfaces = ["eth0", ".."]
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
