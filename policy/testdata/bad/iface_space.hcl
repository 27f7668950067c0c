# want: 2:15 is not a Linux interface name
interfaces = ["eth 0"]
door "ssh" {
  sequence = ["7000", "8000/udp", "9000"]
  open = ["22/tcp"]
}
